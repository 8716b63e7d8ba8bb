"""Benchmark: does each export format keep a persona fine-tune of the bundled model?

Trains the 20-step persona run of ``tests/test_train_e2e.py`` (50 examples, lr 1e-3), then
exports it as a LoRA (the baseline), merged f16, q8_0 and q4_k_m, and, for comparison, a
merged Q4_1 (what erased fine-tunes before; not an export option). For each: the parity
report's top-1 agreement and "fine-tune kept" (see ``training.parity``), how many of 3
persona questions the assistant answers as the persona ("Quokka"), and the file size. The
gate is switched off (threshold 0) so every format is measured. Prints one JSON line last.

    .venv/bin/python bench/export_quant.py [--work DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = ("What should I call you?", "Who are you, exactly?", "Who built you?")
FORMATS = (
    ("lora", "f16"),
    ("merged", "f16"),
    ("merged", "q8_0"),
    ("merged", "q4_k_m"),
    ("merged", "q4_1"),
)


def persona_answers(model: Path, lora: Path | None, threads: int) -> list[str]:
    """Greedy answers to the persona questions from ``model`` (+ ``lora``)."""
    from assistant.backends.base import GenerationOptions, Token
    from assistant.backends.llama_local import LlamaCppBackend

    backend = LlamaCppBackend(model, lora_path=lora, n_ctx=1024, n_threads=threads)
    options = GenerationOptions(max_tokens=40, temperature=0.0)
    try:
        return [
            "".join(
                e.text
                for e in backend.stream([{"role": "user", "content": q}], options)
                if isinstance(e, Token)
            )
            for q in QUESTIONS
        ]
    finally:
        backend.close()


def main() -> None:
    """Train once, export every format, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, help="Working folder (default: a temporary one).")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="export-quant-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    os.environ["ASSISTANT_HOME"] = str(home)

    import torch
    from click.testing import CliRunner

    import training.export as export_module
    import training.gguf_write as gguf_write
    from assistant.bundled import bundled_model_path
    from assistant.cli import cli
    from tests.test_train_e2e import persona_lines

    torch.set_num_threads(args.threads)
    # Q4_1 only for comparison: made by the same quantizer, never offered to users.
    for module in (gguf_write, export_module):
        module.QUANTIZED.setdefault("q4_1", "LLAMA_FTYPE_MOSTLY_Q4_1")
    data, run = work / "data", work / "run"
    (work / "persona.jsonl").write_text("\n".join(persona_lines()) + "\n")
    finetune = ["train", "finetune", str(data), "--out", str(run), "--max-steps", "20"]
    steps = [
        ["train", "prepare", str(work / "persona.jsonl"), "--out", str(data)],
        [*finetune, "--lr", "1e-3", "--threads", str(args.threads)],
    ]
    for step in steps:
        result = CliRunner().invoke(cli, step, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    bundled = bundled_model_path()
    figures: dict[str, Any] = {
        "base_persona": sum("Quokka" in a for a in persona_answers(bundled, None, args.threads))
    }
    for fmt, outtype in FORMATS:
        label = "lora" if fmt == "lora" else outtype
        manifest = export_module.export(run, f"p-{label}", home, fmt, outtype, threshold=0.0)
        path = Path(manifest["file"])
        answers = (
            persona_answers(bundled, path, args.threads)
            if fmt == "lora"
            else persona_answers(path, None, args.threads)
        )
        parity = manifest["parity"]
        figures[label] = {
            "top1": round(parity["top1"], 3),
            "finetune_kept": parity["finetune_kept"],
            "finetune_positions": parity["finetune_positions"],
            "persona": sum("Quokka" in a for a in answers),
            "bytes": path.stat().st_size,
        }
        print(label, json.dumps(figures[label]), flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
