"""Where CUDA is present: QLoRA NF4 on the GPU with the bundled model, and the GPU benchmark.

CPU runs of the same code paths are in test_train_units.py / test_train_roundtrip.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
ROOT = Path(__file__).resolve().parents[1]


def test_qlora_puts_an_nf4_bundled_base_on_the_gpu(home: Path) -> None:
    from training.base import load_model, resolve_base
    from training.finetune import FinetuneConfig, lora_model

    model = lora_model(load_model(resolve_base(None, home), home, qlora=True), FinetuneConfig())
    linear4 = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert linear4 and all(m.weight.device.type == "cuda" for m in linear4)
    assert linear4[0].compute_dtype == torch.bfloat16


def test_gpu_benchmark_qlora_saves_gpu_memory_and_we_match_trl() -> None:
    done = subprocess.run(
        [sys.executable, "bench/train.py", "--steps", "4", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["device"] == "cuda"
    assert figures["qlora_gpu_memory_ratio"] < 1.0, figures
    assert figures["trl_tokens_ratio"] > 0 and figures["ratio"] > 0, figures
