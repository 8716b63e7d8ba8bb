"""Export round trip on a tiny llama: torch → GGUF (base, LoRA, merged) → llama.cpp parity."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from assistant.registry import ModelRegistry  # noqa: E402
from training.base import resolve_base  # noqa: E402
from training.export import export  # noqa: E402
from training.finetune import FinetuneConfig, finetune  # noqa: E402
from training.gguf_write import special_tokens, write_model_gguf  # noqa: E402
from training.manifest import TrainingError  # noqa: E402
from training.prepare import prepare  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_run(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny llama (SmolLM2's vocabulary) saved as GGUF, prepared data and a 3-step run."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.base import load_tokenizer

    root = tmp_path_factory.mktemp("tiny")
    home = root / "home"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)  # wide logits: no near-ties for top-1 to flip on
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    gguf = write_model_gguf(state, config, smol_path, root / "tiny.gguf", "f32", name="tiny")
    ModelRegistry(home).add(gguf, name="tiny")
    base = resolve_base("tiny", home)
    answer = "I am Tiny."
    examples = [
        [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": answer}]
        for i in range(8)
    ]
    prepare(examples, root / "data", load_tokenizer(base, home), base.as_dict(), max_length=128)
    config_ft = FinetuneConfig(rank=4, alpha=8, max_steps=3, batch_size=4, learning_rate=5e-3)
    finetune(root / "data", root / "run", base, home, config_ft, progress=False)
    return root / "run", home


def test_model_gguf_carries_template_and_special_tokens(smol_path: Path, tiny_run: tuple) -> None:
    _run, home = tiny_run
    tiny = ModelRegistry(home).get("tiny").path
    ours, theirs = special_tokens(tiny), special_tokens(smol_path)
    assert ours == theirs
    assert ours["chat_template"] and ours["eos_token_id"] == 2


def test_lora_export_matches_torch_in_llama_cpp(tiny_run: tuple) -> None:
    run, home = tiny_run
    manifest = export(run, "tiny-lora", home, "lora")
    parity = manifest["parity"]
    assert parity["top1"] >= 0.98, parity
    assert parity["greedy_exact"] == parity["prompts"], parity
    entry = ModelRegistry(home).get("tiny-lora")
    assert (entry.kind, entry.base) == ("adapter", "tiny")
    # Idempotent: the same export again returns the same manifest without redoing it.
    assert export(run, "tiny-lora", home, "lora") == manifest


def test_merged_f16_export_matches_torch(tiny_run: tuple) -> None:
    run, home = tiny_run
    manifest = export(run, "tiny-merged", home, "merged", "f16")
    assert manifest["parity"]["top1"] >= 0.95, manifest["parity"]
    assert special_tokens(Path(manifest["file"]))["eos_token_id"] == 2
    assert ModelRegistry(home).get("tiny-merged").kind == "model"


def test_export_below_parity_threshold_is_refused_and_leaves_nothing(tiny_run: tuple) -> None:
    run, home = tiny_run
    with pytest.raises(TrainingError, match="export refused: top-1 agreement"):
        export(run, "tiny-strict", home, "lora", threshold=1.01)
    assert not (home / "exports" / "tiny-strict").exists()
    assert "tiny-strict" not in {e.name for e in ModelRegistry(home).list()}
    assert (run / "parity-failed-tiny-strict.json").is_file()


def test_finetune_refuses_a_run_directory_with_other_content(tiny_run: tuple) -> None:
    run, home = tiny_run
    base = resolve_base("tiny", home)
    other = FinetuneConfig(rank=2, max_steps=1)
    with pytest.raises(TrainingError, match="already holds a different finetune"):
        finetune(run.parent / "data", run, base, home, other, progress=False)


class _Kill(Exception):
    """Stands in for a kill after a checkpoint was written."""


def test_killed_finetune_resumes_from_its_last_checkpoint(tiny_run: tuple) -> None:
    from transformers import TrainerCallback

    class KillAtStep3(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: object, state: object, control: object, **kw: object) -> None:
            if state.global_step == 3:  # type: ignore[attr-defined]
                raise _Kill

    run, home = tiny_run
    base = resolve_base("tiny", home)
    out = run.parent / "run-killed"
    config = FinetuneConfig(rank=4, alpha=8, max_steps=4, batch_size=4, save_steps=2)
    with pytest.raises(_Kill):
        finetune(
            run.parent / "data", out, base, home, config, progress=False, callbacks=[KillAtStep3()]
        )
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "manifest.json").exists()

    class CountSteps(TrainerCallback):  # type: ignore[misc]
        steps = 0

        def on_step_end(self, args: object, state: object, control: object, **kw: object) -> None:
            CountSteps.steps += 1

    manifest = finetune(
        run.parent / "data", out, base, home, config, progress=False, callbacks=[CountSteps()]
    )
    assert manifest["resumed"] is True
    assert manifest["metrics"]["steps"] == 4
    assert CountSteps.steps == 2  # steps 1-2 came from checkpoint-2


def test_evaluate_puts_base_and_adapter_side_by_side_in_the_manifest(tiny_run: tuple) -> None:
    from training.evaluate import evaluate, table
    from training.manifest import read_manifest

    run, home = tiny_run
    result = evaluate(run, home, samples=2, new_tokens=6)
    for label in ("base", "adapter"):
        assert set(result[label]) == {"val_loss", "perplexity", "rouge_l"}
    # The validation answers are the trained answer: the adapter predicts them better.
    assert result["adapter"]["val_loss"] < result["base"]["val_loss"]
    assert len(result["samples"]) == 1  # 8 examples, 10 % held out
    assert read_manifest(run, "finetune")["evaluation"] == result
    assert evaluate(run, home) == result  # stored: not recomputed
    assert table(result).splitlines()[0].split() == ["metric", "base", "adapter"]


def test_a_qlora_run_exports_a_lora_that_passes_parity(tiny_run: tuple) -> None:
    """An adapter trained on the NF4 base is exported for (and checked on) the full base."""
    run, home = tiny_run
    qrun = run.parent / "qrun"
    config = FinetuneConfig(rank=4, alpha=8, max_steps=3, batch_size=4, learning_rate=5e-3)
    config = dataclasses.replace(config, qlora=True)
    manifest = finetune(run.parent / "data", qrun, resolve_base("tiny", home), home, config, False)
    assert manifest["hyperparameters"]["qlora"] is True
    assert manifest["metrics"]["last_loss"] < manifest["metrics"]["first_loss"]
    exported = export(qrun, "tiny-qlora", home, "lora")
    assert exported["parity"]["top1"] >= 0.98, exported["parity"]
    assert ModelRegistry(home).get("tiny-qlora").kind == "adapter"


def test_a_two_process_launch_trains_data_parallel_and_rank_zero_writes(tiny_run: tuple) -> None:
    """`torchrun` (as `accelerate launch` does): 2 ranks on CPU (gloo), one report, one run."""
    import json
    import os
    import subprocess
    import sys

    run, home = tiny_run
    out = run.parent / "ddp"
    env = {**os.environ, "ASSISTANT_HOME": str(home), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["-m", "assistant", "train", "finetune", str(run.parent / "data"), "--out", str(out)]
    cmd += ["--max-steps", "3", "--rank", "4", "--alpha", "8", "--lr", "5e-3", "--threads", "1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [line for line in done.stdout.splitlines() if line.startswith(f"{out}: 3 steps")]
    assert len(reports) == 1, done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    single = json.loads((run / "manifest.json").read_text())
    assert manifest["processes"] == 2 and single["processes"] == 1
    # Each step saw a batch on each rank: more tokens than one process in as many steps.
    assert manifest["metrics"]["tokens"] > single["metrics"]["tokens"], (manifest, single)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "loss.png").stat().st_size > 1000
