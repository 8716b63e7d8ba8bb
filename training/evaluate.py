"""Stage 3, evaluate: validation loss, perplexity and ROUGE-L, base vs adapter side by side.

The results go into the run's manifest under ``evaluation`` (and ``evaluation.json``), so
rerunning returns them without loading anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from training.base import BaseModel, load_tokenizer
from training.finetune import Collator, load_adapter
from training.manifest import TrainingError, read_manifest, write_manifest
from training.prepare import load_split


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased whitespace tokens (longest common subsequence)."""
    a, b = candidate.lower().split(), reference.lower().split()
    if not a or not b:
        return 0.0
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    lcs = row[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def _loss(model: Any, rows: list[dict[str, Any]], pad_id: int, batch: int = 4) -> float:
    """Token-weighted mean cross-entropy over the supervised tokens of ``rows``."""
    import torch

    total = count = 0.0
    collate = Collator(pad_id)
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            inputs = collate(rows[i : i + batch])
            n = int((inputs["labels"][:, 1:] != -100).sum())
            total += float(model(**inputs).loss) * n
            count += n
    return total / max(count, 1)


def _generate(model: Any, tokenizer: Any, messages: list[dict[str, str]], n: int) -> str:
    import torch

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id,
        )
    return str(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))


def evaluate(run_dir: Path, home: Path, samples: int = 8, new_tokens: int = 48) -> dict[str, Any]:
    """Score the base model and the adapter on the run's validation split.

    Returns the ``evaluation`` dict: ``base`` and ``adapter`` each with ``val_loss``,
    ``perplexity`` and ``rouge_l``, plus per-sample generations.

    Raises:
        TrainingError: the run is unfinished or its data directory is gone.
    """
    run = read_manifest(run_dir, "finetune")
    if "evaluation" in run:
        return dict(run["evaluation"])
    data_dir = Path(run["data"]["dir"])
    if not (data_dir / "val.jsonl").is_file():
        raise TrainingError(f"the run's data directory {data_dir} is gone; prepare it again")
    rows = load_split(data_dir, "val")
    if not rows:
        raise TrainingError(f"{data_dir} has no validation examples; prepare more data")
    base = BaseModel(run["base"]["name"], Path(run["base"]["path"]), run["base"]["kind"])
    tokenizer = load_tokenizer(base, home)
    model = load_adapter(run_dir, home, base)
    model.eval()
    pad_id = int(tokenizer.pad_token_id)
    picked = rows[:samples]
    result: dict[str, Any] = {"samples": []}
    outputs: dict[str, list[str]] = {}
    for label in ("base", "adapter"):
        if label == "base":
            with model.disable_adapter():
                loss = _loss(model, rows, pad_id)
                outputs[label] = [
                    _generate(model, tokenizer, r["messages"][:-1], new_tokens) for r in picked
                ]
        else:
            loss = _loss(model, rows, pad_id)
            outputs[label] = [
                _generate(model, tokenizer, r["messages"][:-1], new_tokens) for r in picked
            ]
        refs = [r["messages"][-1]["content"] for r in picked]
        scores = [rouge_l(o, ref) for o, ref in zip(outputs[label], refs, strict=True)]
        result[label] = {
            "val_loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "rouge_l": sum(scores) / len(scores),
        }
    for i, r in enumerate(picked):
        result["samples"].append(
            {
                "prompt": r["messages"][-2]["content"] if len(r["messages"]) > 1 else "",
                "reference": r["messages"][-1]["content"],
                "base": outputs["base"][i],
                "adapter": outputs["adapter"][i],
            }
        )
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=2))
    write_manifest(run_dir, {**run, "evaluation": result})
    return result


def table(evaluation: dict[str, Any]) -> str:
    """The base vs adapter metrics as a small text table."""
    lines = [f"{'metric':<12}{'base':>12}{'adapter':>12}"]
    for metric in ("val_loss", "perplexity", "rouge_l"):
        b, a = evaluation["base"][metric], evaluation["adapter"][metric]
        lines.append(f"{metric:<12}{b:>12.4f}{a:>12.4f}")
    return "\n".join(lines)
