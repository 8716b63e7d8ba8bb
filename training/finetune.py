"""Stage 2, finetune: a prepared data directory → a LoRA adapter in a run directory.

``method``: ``sft`` (supervised, on examples) or ``dpo`` / ``orpo`` (on preference pairs,
through TRL's ``DPOTrainer`` / ``ORPOTrainer``; DPO may start from an SFT run's adapter,
which is then also its reference model).
peft LoRA on the transformers ``Trainer`` (so ``accelerate launch`` spreads it over GPUs):
fp32 on CPU (bf16 is ~18x slower on CPUs without bf16 units), bf16 mixed precision on CUDA;
``qlora`` trains on an NF4 base (bf16 compute on CUDA, fp32 on CPU).
Checkpoints go to ``RUN_DIR/checkpoints``; a killed run resumes from the last complete one
when the same command is run again (see ``training.checkpoints``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.base import BaseModel, load_model
from training.checkpoints import resume_point, set_aside
from training.manifest import (
    TrainingError,
    digest,
    existing_result,
    read_manifest,
    require_free,
    write_manifest,
)
from training.prepare import load_split

METHODS = ("sft", "dpo", "orpo")
LEARNING_RATES = {"sft": 5e-4, "dpo": 5e-5, "orpo": 5e-4}  # LoRA rates; see training/README
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_KEY_FILE = ".run-key"
_KEY_TMP = f"{_KEY_FILE}.tmp"
_RESULTS = ("adapter", "loss.png")  # what a finished run writes besides its manifest


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters of one LoRA run."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    learning_rate: float = 5e-4
    batch_size: int = 4
    max_steps: int = 60
    save_steps: int = 10
    seed: int = 0
    targets: tuple[str, ...] = field(default=TARGETS)
    qlora: bool = False
    method: str = "sft"
    beta: float = 0.1  # DPO: how far from the reference; ORPO: the odds-ratio term's weight
    from_adapter: str | None = None  # a finished run directory whose adapter DPO/ORPO goes on

    def key_fields(self) -> dict[str, Any]:
        """What identifies a run (an SFT run's key is the same as before methods existed)."""
        fields = asdict(self)
        if self.method == "sft":
            for name in ("method", "beta", "from_adapter"):
                fields.pop(name)
        return fields


class Collator:
    """Pad a batch on the right; padded labels are -100 and masked from attention."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self.tokens = 0  # real (unpadded) tokens collated so far

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack rows into input_ids / attention_mask / labels tensors."""
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids, mask, labels = [], [], []
        self.tokens += sum(len(r["input_ids"]) for r in rows)
        for r in rows:
            pad = width - len(r["input_ids"])
            ids.append(r["input_ids"] + [self.pad_id] * pad)
            mask.append([1] * len(r["input_ids"]) + [0] * pad)
            labels.append(r["labels"] + [-100] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels),
        }


def lora_model(model: Any, config: FinetuneConfig) -> Any:
    """Wrap ``model`` with fresh LoRA layers (only they are trainable)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if config.qlora:
        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    return get_peft_model(model, lora_config(config))


def lora_config(config: FinetuneConfig) -> Any:
    """The peft ``LoraConfig`` of a run (shared with the benchmark's TRL reference)."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.targets),
        task_type="CAUSAL_LM",
    )


def training_args(out: Path, config: FinetuneConfig, progress: bool = True) -> Any:
    """The ``TrainingArguments`` a run uses (shared with the benchmark)."""
    from transformers import TrainingArguments

    return TrainingArguments(**_args(out, config, progress))


def _args(out: Path, config: FinetuneConfig, progress: bool) -> dict[str, Any]:
    """Trainer settings every method shares (TRL's configs take the same ones)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()  # mixed precision; fp32 on CPU (see above)
    return dict(
        output_dir=str(out),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        logging_steps=1,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        report_to=[],
        use_cpu=not cuda,
        bf16=bf16,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every LoRA weight is used in each step
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )


def finetune(
    data_dir: Path,
    out: Path,
    base: BaseModel,
    home: Path,
    config: FinetuneConfig | None = None,
    progress: bool = True,
    callbacks: list[Any] | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter on ``data_dir`` into ``out`` and return the run's manifest.

    Rerunning a finished run returns its manifest; rerunning a killed one resumes it from
    its last complete checkpoint, and ``notify`` (default: a logged warning) gets one line
    naming any incomplete checkpoint set aside. ``callbacks`` are transformers
    ``TrainerCallback``s (e.g. a TUI progress reporter).

    Raises:
        TrainingError: the data was prepared for another base, or ``out`` holds another run.
    """
    config = config or FinetuneConfig()
    data = read_manifest(data_dir, "prepare")
    if data["base"]["path"] != str(base.path):
        raise TrainingError(
            f"{data_dir} was prepared for {data['base']['name']}, not {base.name}; "
            f"rerun prepare with --base {base.name} or finetune with --base {data['base']['name']}"
        )
    start = _check_method(config, data, data_dir, base)
    key = digest([data["key"], base.as_dict(), config.key_fields(), start])
    done = existing_result(out, "finetune", key)
    if done is not None:
        return done
    key_file = out / _KEY_FILE
    ours = key_file.is_file() and key_file.read_text() == key
    # A run killed after its last step, while writing its adapter, plot or manifest, left
    # some of them (and write_manifest's temp file): they are its own, written again below.
    temps = [p.name for p in out.glob(".manifest.*.json")] if ours else []
    leftovers = [*_RESULTS, *temps] if ours else []
    require_free(out, allowed=("checkpoints", _KEY_FILE, _KEY_TMP, *leftovers))
    if key_file.exists() and not ours:
        raise TrainingError(f"{out} holds checkpoints of another run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for name in temps:
        (out / name).unlink()
    if not ours:  # whole or not at all: a key cut short by a kill would disown the checkpoints
        (out / _KEY_TMP).write_text(key)
        os.replace(out / _KEY_TMP, key_file)

    import torch
    from transformers import Trainer, set_seed

    checkpoints = out / "checkpoints"
    resume, broken = resume_point(checkpoints)
    # Under `accelerate launch` / torchrun every rank looks; rank 0 alone moves and tells.
    if broken and os.environ.get("RANK", "0") == "0":
        (notify or logging.getLogger(__name__).warning)(set_aside(broken, resume))
    set_seed(config.seed)
    train_rows = load_split(data_dir, "train")
    if config.method == "sft":
        model = lora_model(load_model(base, home, qlora=config.qlora), config)
        pad_id = int(model.config.pad_token_id or model.config.eos_token_id or 0)
        collator: Collator | _Counting = Collator(pad_id)
        trainer = Trainer(
            model=model,
            args=training_args(out / "checkpoints", config, progress),
            train_dataset=train_rows,
            data_collator=collator,
            callbacks=callbacks,
        )
    else:
        trainer, collator = _preference_trainer(
            train_rows, out, base, home, config, progress, callbacks, data["params"]
        )
        model = trainer.model
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    # Under `accelerate launch` / torchrun every rank gets here; rank 0 alone writes the run.
    accelerator = trainer.accelerator
    tokens = int(accelerator.reduce(torch.tensor(collator.tokens), reduction="sum").item())
    if not trainer.is_world_process_zero():
        accelerator.wait_for_everyone()
        return read_manifest(out, "finetune")
    model = accelerator.unwrap_model(model)
    # TRL adds a frozen "ref" copy when DPO starts from an adapter: only the trained one ships.
    model.save_pretrained(str(out / "adapter"), selected_adapters=["default"])
    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    plot_losses(losses, out / "loss.png")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    manifest = write_manifest(
        out,
        {
            "stage": "finetune",
            "key": key,
            "base": base.as_dict(),
            "data": {"dir": str(data_dir.resolve()), "key": data["key"], "hash": data["data_hash"]},
            "chat_template": data["chat_template"],
            "hyperparameters": asdict(config),
            "method": config.method,
            "data_kind": data.get("kind", "examples"),
            "from_adapter": start,
            "resumed": resume is not None,
            "processes": accelerator.num_processes,
            "metrics": {
                "steps": int(trainer.state.global_step),
                "train_loss": float(result.training_loss),
                "first_loss": losses[0][1] if losses else None,
                "last_loss": losses[-1][1] if losses else None,
                "trainable_parameters": int(trainable),
                "runtime_s": float(result.metrics.get("train_runtime", 0.0)),
                # trained by this invocation, all processes (a resumed run: since the resume)
                "tokens": tokens,
            },
            "losses": losses,
            "preference_log": _preference_log(trainer.state.log_history),
        },
    )
    accelerator.wait_for_everyone()
    return manifest


def _check_method(
    config: FinetuneConfig, data: dict[str, Any], data_dir: Path, base: BaseModel
) -> dict[str, Any] | None:
    """Refuse a method that does not fit the data; the adapter run a DPO/ORPO run starts from.

    Raises:
        TrainingError: unknown method, SFT on pairs or DPO on examples, a bad --from-adapter.
    """
    if config.method not in METHODS:
        raise TrainingError(f"unknown method {config.method!r}; choose sft, dpo or orpo")
    pairs = data.get("kind") == "preferences"
    if config.method == "sft" and pairs:
        raise TrainingError(
            f"{data_dir} holds preference pairs; train them with --method dpo or --method orpo"
        )
    if config.method != "sft" and not pairs:
        raise TrainingError(
            f"--method {config.method} needs preference pairs; prepare them with "
            "`assistant train prepare --preferences` (or JSONL prompt/chosen/rejected)"
        )
    if config.from_adapter is None:
        return None
    if config.method == "sft":
        raise TrainingError("--from-adapter starts a DPO or ORPO run; pass --method dpo")
    run_dir = Path(config.from_adapter)
    run = read_manifest(run_dir, "finetune")
    if run["base"]["path"] != str(base.path):
        raise TrainingError(
            f"{run_dir} was trained on {run['base']['name']}, not {base.name}; "
            "start from an adapter of the same base"
        )
    if not (run_dir / "adapter" / "adapter_config.json").is_file():
        raise TrainingError(f"{run_dir} has no adapter; finish that run first")
    return {"dir": str(run_dir.resolve()), "key": run["key"], "method": run.get("method", "sft")}


class _Counting:
    """Wrap TRL's collator to count the tokens each step trains on."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate
        self.tokens = 0

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        for r in rows:
            if "chosen_input_ids" in r:  # ORPO: each sequence holds its prompt
                self.tokens += len(r["chosen_input_ids"]) + len(r["rejected_input_ids"])
            else:  # DPO: the prompt goes in twice, before each reply
                self.tokens += 2 * len(r["prompt_ids"]) + len(r["chosen_ids"])
                self.tokens += len(r["rejected_ids"])
        return self.collate(rows)


def _preference_trainer(
    rows: list[dict[str, Any]],
    out: Path,
    base: BaseModel,
    home: Path,
    config: FinetuneConfig,
    progress: bool,
    callbacks: list[Any] | None,
    params: dict[str, Any],
) -> tuple[Any, _Counting]:
    """TRL's DPOTrainer or ORPOTrainer over the pairs, with our LoRA and trainer settings.

    Rows go in TRL's conversational form, so TRL renders them with the base's own chat
    template (``processing_class``), as ``prepare`` did.
    """
    from datasets import Dataset
    from peft import PeftModel

    from training.base import load_tokenizer

    dataset = Dataset.from_list(
        [
            {
                "prompt": r["prompt"],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in rows
        ]
    )
    tokenizer = load_tokenizer(base, home)
    model = load_model(base, home, qlora=config.qlora)
    peft_config = None
    if config.from_adapter:
        adapter = str(Path(config.from_adapter) / "adapter")
        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
    elif config.qlora:
        model = lora_model(model, config)  # NF4 needs peft's k-bit preparation first
    else:
        peft_config = lora_config(config)
    common = _args(out / "checkpoints", config, progress)
    common |= {"beta": config.beta, "max_length": int(params.get("max_length", 512))}
    common["gradient_checkpointing"] = False  # TRL's default; the bases trained here fit without
    if config.method == "dpo":
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        trainer: Any = DPOTrainer(
            model=model,
            args=DPOConfig(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
    else:
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        trainer = ORPOTrainer(
            model=model,
            args=ORPOConfig(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
    counting = _Counting(trainer.data_collator)
    trainer.data_collator = counting
    return trainer, counting


def _preference_log(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per step: the reward accuracy and margin TRL logs for DPO / ORPO (empty for SFT)."""
    keep = ("rewards/accuracies", "rewards/margins", "log_odds_ratio", "nll_loss")
    return [
        {"step": e["step"], **{k: float(e[k]) for k in keep if k in e}}
        for e in history
        if "rewards/accuracies" in e
    ]


def plot_losses(losses: list[tuple[float, float]], path: Path) -> None:
    """Save the training loss curve as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([s for s, _ in losses], [v for _, v in losses], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_adapter(run_dir: Path, home: Path, base: BaseModel) -> Any:
    """The fp32 base with the run's trained adapter attached (peft ``PeftModel``)."""
    from peft import PeftModel

    model = load_model(base, home)
    return PeftModel.from_pretrained(model, str(run_dir / "adapter"))


def adapter_config(run_dir: Path) -> dict[str, Any]:
    """The peft adapter config saved with a run."""
    return dict(json.loads((run_dir / "adapter" / "adapter_config.json").read_text()))
