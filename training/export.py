"""Stage 4, export: a finished run → a GGUF the assistant loads, gated on parity, registered.

* ``lora``: an f16 GGUF LoRA adapter for the original base GGUF (``--adapter NAME``);
* ``merged``: the adapter merged into the fp32 base, written as f16 or q8_0, or as q4_k_m
  through llama.cpp's quantizer (from the merged f16). Never the base's own Q4 grid:
  re-quantizing onto it snaps the small delta back and erases the fine-tune (measured: 0/3
  persona answers, 63 % top-1); so every export is also checked where the fine-tune changed
  the model's predictions (:func:`training.parity.finetune_probe`).

The base's chat template and BOS/EOS/padding tokens are carried over and checked, and the
exported file must agree with the merged torch model (see :mod:`training.parity`); below the
threshold the file is deleted and export fails with the report.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.registry import ModelRegistry
from training.base import BaseModel, load_tokenizer
from training.finetune import adapter_config, load_adapter
from training.forgetting import gate
from training.gguf_write import (
    QUANTIZED,
    quantize_gguf,
    special_tokens,
    write_lora_gguf,
    write_model_gguf,
)
from training.manifest import TrainingError, digest, existing_result, read_manifest, write_manifest
from training.parity import PROMPTS, Probe, check_parity, finetune_probe
from training.prepare import load_split

FORMATS = ("lora", "merged")
# Top-1 agreement with the merged torch model on general prompts. 4-bit noise alone costs
# q4_k_m about a quarter of them on the bundled model (74.7 %, fine-tune fully kept), so its
# bar is lower; what guards the fine-tune is KEPT_THRESHOLD, the same for every format.
THRESHOLDS = {"lora": 0.85, "f16": 0.95, "q8_0": 0.9, "f32": 0.98, "q4_k_m": 0.7}
KEPT_THRESHOLD = 0.9


def lora_weights(peft_model: Any) -> dict[str, tuple[Any, Any]]:
    """HF module name -> (A, B) numpy arrays of every LoRA layer in ``peft_model``."""
    found = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            hf_name = name.removeprefix("base_model.model.")
            a = module.lora_A["default"].weight.detach().float().numpy()
            b = module.lora_B["default"].weight.detach().float().numpy()
            found[hf_name] = (a, b)
    return found


def export(
    run_dir: Path,
    name: str,
    home: Path,
    fmt: str = "lora",
    outtype: str = "f16",
    threshold: float | None = None,
    prompts: tuple[str, ...] = PROMPTS,
    register: bool = True,
    strict: bool = False,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export the run in ``run_dir`` as ``<home>/exports/<name>/<name>.gguf`` and register it.

    Returns the export manifest (with the parity report and the forgetting probe). Rerunning
    returns it unchanged. A probe worse than the base beyond the thresholds is reported to
    ``notify`` (default: a logged warning), and refused when ``strict``.

    Raises:
        TrainingError: unknown format, a base that is not a GGUF, a taken name, a template or
            special-token mismatch, parity below the threshold, or (``strict``) forgetting.
    """
    if fmt not in FORMATS:
        raise TrainingError(f"unknown format {fmt!r}; choose lora or merged")
    if fmt == "lora":
        outtype = "f16"
    run = read_manifest(run_dir, "finetune")
    forgetting = gate(run_dir, home, strict, notify or logging.getLogger(__name__).warning)
    base = BaseModel(run["base"]["name"], Path(run["base"]["path"]), run["base"]["kind"])
    if base.gguf is None:
        raise TrainingError(
            f"{base.name} is a Hugging Face directory; GGUF export needs a GGUF base "
            "(train with --base NAME_OR_PATH.gguf)"
        )
    # A --threshold the user gives sets both bars.
    kept = KEPT_THRESHOLD if threshold is None else threshold
    threshold = THRESHOLDS[fmt if fmt == "lora" else outtype] if threshold is None else threshold
    key = digest([run["key"], fmt, outtype, threshold])
    out = home / "exports" / name
    done = existing_result(out, "export", key)
    if done is not None:
        return done
    if out.exists():
        raise TrainingError(f"{out} exists; choose another --name or delete it")
    registry = ModelRegistry(home)
    if register and fmt == "lora" and base.name not in {e.name for e in registry.list()}:
        raise TrainingError(
            f"the base {base.path} is not registered; run `assistant models add {base.path} "
            f"--name {base.name}` first"
        )

    tokenizer = load_tokenizer(base, home)
    base_tokens = special_tokens(base.gguf)
    _check_tokens(base_tokens, run["chat_template"], tokenizer, str(base.gguf))
    model = load_adapter(run_dir, home, base)
    alpha = float(adapter_config(run_dir)["lora_alpha"])
    lora = lora_weights(model)
    probe = _probe(model, run)
    merged = model.merge_and_unload()
    out.mkdir(parents=True)
    target = out / f"{name}.gguf"
    try:
        if fmt == "lora":
            write_lora_gguf(lora, merged.config, alpha, target, name)
            report = check_parity(
                merged,
                tokenizer,
                base.gguf,
                target,
                prompts,
                threshold=threshold,
                probe=probe,
                kept_threshold=kept,
            )
        else:
            state = {k: v.detach().float().numpy() for k, v in merged.state_dict().items()}
            if outtype in QUANTIZED:  # llama.cpp quantizes the merged f16 file
                f16 = out / f"{name}.f16.gguf"
                write_model_gguf(state, merged.config, base.gguf, f16, "f16", name=name)
                quantize_gguf(f16, target, outtype)
                f16.unlink()
            else:
                write_model_gguf(state, merged.config, base.gguf, target, outtype, name=name)
            _check_tokens(special_tokens(target), run["chat_template"], tokenizer, str(target))
            report = check_parity(
                merged,
                tokenizer,
                target,
                None,
                prompts,
                threshold=threshold,
                probe=probe,
                kept_threshold=kept,
            )
        if not report.passed:
            failed = run_dir / f"parity-failed-{name}.json"
            failed.write_text(json.dumps(report.as_dict(), indent=2))
            raise TrainingError(
                f"export refused: {report.summary()}; the full report is in {failed}"
            )
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    entry = None
    if register:
        entry, _ = registry.add(target, name=name, base=base.name if fmt == "lora" else None)
    return write_manifest(
        out,
        {
            "stage": "export",
            "key": key,
            "run": str(run_dir.resolve()),
            "format": fmt,
            "outtype": outtype,
            "file": str(target),
            "bytes": target.stat().st_size,
            "base": run["base"],
            "chat_template": run["chat_template"],
            "special_tokens": {k: v for k, v in base_tokens.items() if k != "chat_template"},
            "parity": report.as_dict(),
            "forgetting": forgetting,
            "registered": entry.name if entry else None,
        },
    )


def _probe(peft_model: Any, run: dict[str, Any]) -> Probe | None:
    """Where the run's training examples show the fine-tune (None if its data is gone)."""
    data = Path(run.get("data", {}).get("dir", ""))
    if not (data / "train.jsonl").is_file():
        return None
    return finetune_probe(peft_model, load_split(data, "train"))


def _check_tokens(found: dict[str, Any], template: str, tokenizer: Any, where: str) -> None:
    """The GGUF must carry the training chat template and the tokenizer's BOS/EOS ids."""
    if found["chat_template"] != template:
        raise TrainingError(
            f"{where} carries a different chat template from the one the run was trained "
            "with; export from the same base the data was prepared for"
        )
    for label in ("bos_token_id", "eos_token_id"):
        ours = getattr(tokenizer, label)
        if ours is not None and found[label] is not None and int(found[label]) != int(ours):
            raise TrainingError(f"{where}: {label} is {found[label]}, the tokenizer's is {ours}")
