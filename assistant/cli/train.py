"""``assistant train``: turn your own examples into a LoRA adapter the assistant loads.

The stages live in the ``training`` package (the ``[train]`` extra: torch, transformers,
peft); they are imported inside each command so the rest of the CLI starts fast without them.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import click

from assistant.config import Config, load_config


def _setup(threads: int | None) -> Config:
    """Load the configuration and pin torch's thread count (spinning threads thrash)."""
    from assistant.rag.adaptation import pin_threads

    config = load_config()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pin_threads(threads or config.train_threads)
    # peft calls transformers APIs renamed for v6; the notices say nothing a user can act on.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    return config


@click.group()
def train() -> None:
    """Train a personal LoRA adapter: prepare → finetune → evaluate → export."""


@train.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Data directory.")
@click.option("--base", help="Base model: registry name, .gguf path or HF directory.")
@click.option("--val-fraction", default=0.1, show_default=True, help="Share held out.")
@click.option("--max-length", default=512, show_default=True, help="Tokens kept per example.")
@click.option("--skip-invalid", is_flag=True, help="Skip bad lines instead of stopping.")
@click.option("--no-scrub", is_flag=True, help="Keep e-mails, phone numbers etc. as they are.")
@click.option(
    "--marked",
    is_flag=True,
    help="Also use the stored conversations marked with `assistant history mark ID`.",
)
@click.option(
    "--preferences",
    is_flag=True,
    help="Preference pairs for DPO/ORPO: FILES of prompt/chosen/rejected lines; with no "
    "FILES (or with --marked) your ratings and /compare picks in marked conversations.",
)
def prepare(
    files: tuple[Path, ...],
    marked: bool,
    preferences: bool,
    out: Path,
    base: str | None,
    val_fraction: float,
    max_length: int,
    skip_invalid: bool,
    no_scrub: bool,
) -> None:
    """Turn JSONL FILES (chat `messages` or instruction/input/output) into a data directory.

    With --marked, the conversations marked for training in the history are added (only
    those: nothing else you said is ever used).
    """
    config = _setup(None)
    from training.base import load_tokenizer, resolve_base
    from training.manifest import TrainingError
    from training.prepare import prepare as run_prepare
    from training.prepare import read_examples

    if preferences:
        _prepare_pairs(
            config,
            files,
            marked or not files,
            out,
            base,
            skip_invalid,
            no_scrub,
            val_fraction,
            max_length,
        )
        return
    if not files and not marked:
        raise TrainingError("nothing to prepare: pass JSONL files, --marked, or both")
    examples, problems = read_examples(list(files))
    owners: list[str | None] = [None] * len(examples)
    if marked:
        chosen = _marked_conversations(config)
        if not chosen:
            raise TrainingError(
                "no conversation is marked for training; mark one with `assistant history mark ID`"
            )
        examples += [example for _, example in chosen]
        owners += [conversation for conversation, _ in chosen]
    _report(problems, skip_invalid)
    model = resolve_base(base, config.home)
    manifest = run_prepare(
        examples,
        out,
        load_tokenizer(model, config.home),
        model.as_dict(),
        val_fraction=val_fraction,
        max_length=max_length,
        scrub=not no_scrub,
        problems=problems,
        conversations=owners,
    )
    counts = manifest["counts"]
    click.echo(
        f"{out}: {counts['train']} training and {counts['val']} validation examples "
        f"({counts['supervised_tokens']} supervised tokens) for {model.name}"
    )


def _report(problems: list[str], skip_invalid: bool) -> None:
    """List the bad lines; stop unless --skip-invalid (one bad line: all in one line)."""
    from training.manifest import TrainingError

    if len(problems) == 1 and not skip_invalid:  # one bad line: say it all in one line
        raise TrainingError(f"{problems[0]}; fix the line or pass --skip-invalid to leave it out")
    for problem in problems[:20]:
        click.echo(f"invalid: {problem}", err=True)
    if problems and not skip_invalid:
        shown = "listed above" if len(problems) <= 20 else "the first 20 listed above"
        raise TrainingError(
            f"{len(problems)} invalid lines ({shown}); "
            "fix them or pass --skip-invalid to leave them out"
        )


def _prepare_pairs(
    config: Config,
    files: tuple[Path, ...],
    stored: bool,
    out: Path,
    base: str | None,
    skip_invalid: bool,
    no_scrub: bool,
    val_fraction: float,
    max_length: int,
) -> None:
    """`prepare --preferences`: JSONL pairs and/or the store's pairs → a data directory."""
    from training.base import load_tokenizer, resolve_base
    from training.manifest import TrainingError
    from training.preferences import pairs_from_store, prepare_preferences, read_pairs

    pairs, problems = read_pairs(list(files))
    if stored:
        from assistant.memory.factory import open_store
        from assistant.memory.preferences import preference_pairs

        store = open_store(config)
        try:
            found = pairs_from_store(preference_pairs(store, marked_only=True))
        finally:
            store.close()
        if not found and not files:
            raise TrainingError(
                "no preference pairs in conversations marked for training: rate replies "
                "(`assistant history rate ID up|down`, thumbs in the app) or pick answers in "
                "/compare, and mark the conversation (`assistant history mark ID`)"
            )
        pairs += found
    _report(problems, skip_invalid)
    model = resolve_base(base, config.home)
    manifest = prepare_preferences(
        pairs,
        out,
        load_tokenizer(model, config.home),
        model.as_dict(),
        val_fraction=val_fraction,
        max_length=max_length,
        scrub=not no_scrub,
        problems=problems,
    )
    counts = manifest["counts"]
    click.echo(
        f"{out}: {counts['train']} training and {counts['val']} held-out preference pairs "
        f"for {model.name}; next: `assistant train finetune {out} --method dpo --out RUN`"
    )


def _marked_conversations(config: Config) -> list[tuple[str, Any]]:
    """(conversation id, training example) of the conversations marked for training."""
    from assistant.memory.factory import open_store
    from training.prepare import examples_from_conversations

    store = open_store(config)
    chosen = []
    for c in store.conversations():
        if not c.marked_for_training:
            continue
        messages = [
            {"role": m.role, "content": m.content}
            for m in store.messages(c.id)
            if m.status == "complete"  # never learn a cut-off reply
        ]
        for example in examples_from_conversations([messages]):
            chosen.append((c.id, example))
    return chosen


@train.command()
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--base", help="Base model (default: the one the data was prepared for).")
@click.option("--max-steps", default=60, show_default=True)
@click.option("--rank", default=16, show_default=True, help="LoRA rank.")
@click.option("--alpha", default=32, show_default=True, help="LoRA alpha.")
@click.option(
    "--method",
    type=click.Choice(["sft", "dpo", "orpo"]),
    default="sft",
    show_default=True,
    help="sft on examples; dpo or orpo on preference pairs (prepare --preferences).",
)
@click.option("--beta", default=0.1, show_default=True, help="DPO/ORPO beta.")
@click.option(
    "--from-adapter",
    type=click.Path(path_type=Path),
    help="DPO/ORPO: start from this finished run's adapter (e.g. an SFT run).",
)
@click.option(
    "--lr", "learning_rate", type=float, help="Learning rate [sft 5e-4, dpo 5e-5, orpo 5e-4]."
)
@click.option("--batch-size", default=4, show_default=True)
@click.option("--save-steps", default=10, show_default=True, help="Checkpoint every N steps.")
@click.option(
    "--qlora",
    is_flag=True,
    help="QLoRA: train on an NF4 (4-bit) base; bf16 on CUDA, fp32 on CPU.",
)
@click.option("--threads", type=int, help="torch threads (default: the train_threads setting).")
def finetune(data_dir: Path, out: Path, base: str | None, threads: int | None, **hp: Any) -> None:
    """Train a LoRA adapter on DATA_DIR; rerun the same command to resume after a kill."""
    config = _setup(threads)
    from training.base import resolve_base
    from training.finetune import LEARNING_RATES, FinetuneConfig
    from training.finetune import finetune as run_finetune
    from training.manifest import read_manifest

    data = read_manifest(data_dir, "prepare")
    model = resolve_base(base or data["base"]["path"], config.home)
    if hp["learning_rate"] is None:
        hp["learning_rate"] = LEARNING_RATES[hp["method"]]
    if hp["from_adapter"] is not None:
        hp["from_adapter"] = str(hp["from_adapter"])
    manifest = run_finetune(
        data_dir,
        out,
        model,
        config.home,
        FinetuneConfig(**hp),
        notify=lambda line: click.echo(line, err=True),
    )
    m = manifest["metrics"]
    if os.environ.get("RANK", "0") != "0":  # a worker of a multi-process launch: rank 0 reports
        return
    click.echo(
        f"{out}: {m['steps']} steps, loss {m['first_loss']:.3f} → {m['last_loss']:.3f}; "
        f"curve in {out / 'loss.png'}; next: `assistant train evaluate {out}`"
    )


@train.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--samples", default=8, show_default=True, help="Held-out prompts to generate.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def evaluate(run_dir: Path, samples: int, as_json: bool) -> None:
    """Base vs adapter: validation loss, perplexity, ROUGE-L (and preference accuracy for
    DPO/ORPO), the forgetting probe, and your own held-out conversations."""
    config = _setup(None)
    from training.evaluate import evaluate as run_evaluate
    from training.evaluate import table

    result = run_evaluate(run_dir, config.home, samples=samples)
    click.echo(json.dumps(result) if as_json else table(result))


@train.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Registry name for the exported adapter/model.")
@click.option("--format", "fmt", type=click.Choice(["lora", "merged"]), default="lora")
@click.option(
    "--type",
    "outtype",
    type=click.Choice(["f16", "q8_0", "q4_k_m"]),
    default="f16",
    help="Merged only; q4_k_m goes through llama.cpp's quantizer.",
)
@click.option(
    "--threshold",
    type=float,
    help="Parity gate: minimum top-1 agreement and share of the fine-tune kept.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse when the forgetting probe got worse than the base beyond its limits.",
)
def export(
    run_dir: Path, name: str, fmt: str, outtype: str, threshold: float | None, strict: bool
) -> None:
    """Export RUN_DIR as GGUF, check parity with the torch model, and register it."""
    config = _setup(None)
    from training.export import export as run_export

    manifest = run_export(
        run_dir,
        name,
        config.home,
        fmt,
        outtype,
        threshold,
        strict=strict,
        notify=lambda line: click.echo(line, err=True),
    )
    parity = manifest["parity"]
    click.echo(
        f"{manifest['file']}: top-1 agreement {parity['top1']:.1%}, greedy identical on "
        f"{parity['greedy_exact']}/{parity['prompts']} prompts"
    )
    use = f"--adapter {name}" if fmt == "lora" else f"--model {name}"
    click.echo(f'registered as {name}; try `assistant ask {use} "Who are you?"`')
