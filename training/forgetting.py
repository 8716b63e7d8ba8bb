"""The forgetting probe: what an adapter made worse outside its own data.

Two measures, base (adapter disabled) vs adapter, on text no training run sees:

* **general text perplexity** on Python's own ``LICENSE.txt`` (its history of the language
  and its licence terms: plain English prose), which ships with every CPython install, so
  the probe runs offline on any machine that runs this package;
* **general knowledge**: 20 fixed questions and instructions with short, robust answers,
  answered greedily and scored by string match (a word-boundary, case-insensitive search).

The result goes into the run's manifest (``forgetting``), the evaluate table, and export's
gate: export warns, and ``--strict`` refuses, when the adapter is worse than the base by
more than ``THRESHOLDS`` (see the training README for how they were chosen).
"""

from __future__ import annotations

import math
import re
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.manifest import TrainingError, digest, read_manifest, write_manifest

# (question or instruction, accepted answers)
KNOWLEDGE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is 2 + 2?", ("4", "four")),
    ("What is 10 minus 3?", ("7", "seven")),
    ("How many days are there in a week?", ("7", "seven")),
    ("How many legs does a spider have?", ("8", "eight")),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What is the largest planet in our solar system?", ("jupiter",)),
    ("What is the chemical formula of water?", ("h2o", "h₂o")),
    ("Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("What is the freezing point of water in degrees Celsius?", ("0", "zero")),
    ("What do bees make?", ("honey",)),
    ("Which animal says moo?", ("cow", "cows")),
    ("What is the first month of the year?", ("january",)),
    ("What language is mainly spoken in Spain?", ("spanish",)),
    ("What is the opposite of hot?", ("cold",)),
    ("What gas do plants absorb from the air?", ("carbon dioxide", "co2")),
    ("What is the tallest animal in the world?", ("giraffe", "giraffes")),
    ("Repeat the word banana.", ("banana",)),
    ("Name a primary color.", ("red", "blue", "yellow")),
)
# Worse than the base by more than this is reported (export warns; --strict refuses).
THRESHOLDS = {"perplexity_ratio": 1.10, "knowledge_drop": 0.10}
_TEXT_TOKENS = 1024  # of the general text; in windows of _WINDOW tokens
_WINDOW = 256


def general_text() -> tuple[str, dict[str, Any]]:
    """The general prose the probe scores, and where it came from (path, hash, characters).

    Raises:
        TrainingError: this Python install ships no LICENSE.txt.
    """
    places = [Path(sysconfig.get_paths()["stdlib"]), Path(sys.base_prefix)]
    for folder in places:
        path = folder / "LICENSE.txt"
        if path.is_file():
            raw = path.read_text(encoding="utf-8", errors="replace")
            # one paragraph a line: the file's hard line breaks say nothing about language
            paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", raw)]
            text = "\n\n".join(p for p in paragraphs if p)
            return text, {"path": str(path), "hash": digest(text), "characters": len(text)}
    raise TrainingError(
        "the forgetting probe reads Python's LICENSE.txt, and this Python has none "
        f"(looked in {', '.join(str(p) for p in places)})"
    )


def perplexity(model: Any, tokenizer: Any, text: str, tokens: int = _TEXT_TOKENS) -> float:
    """Perplexity of ``model`` on the first ``tokens`` tokens of ``text`` (fixed windows)."""
    import torch

    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])[:tokens]
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, _WINDOW):
            window = torch.tensor([ids[start : start + _WINDOW]])
            if window.shape[1] < 2:
                break
            loss = float(model(input_ids=window, labels=window).loss)
            n = window.shape[1] - 1
            total, count = total + loss * n, count + n
    return math.exp(min(total / max(count, 1), 50.0))


def answered(reply: str, answers: tuple[str, ...]) -> bool:
    """Whether ``reply`` holds one of ``answers`` as a whole word (case-insensitive)."""
    low = reply.lower()
    return any(re.search(rf"(?<!\w){re.escape(a)}(?!\w)", low) for a in answers)


def knowledge(model: Any, tokenizer: Any, new_tokens: int = 32) -> dict[str, Any]:
    """Share of ``KNOWLEDGE`` answered, and which; greedy, through the chat template."""
    from training.evaluate import _generate

    hits = []
    for question, answers in KNOWLEDGE:
        reply = _generate(model, tokenizer, [{"role": "user", "content": question}], new_tokens)
        hits.append(answered(reply, answers))
    return {"score": sum(hits) / len(hits), "answered": hits}


def probe_model(model: Any, tokenizer: Any, new_tokens: int = 32) -> dict[str, Any]:
    """Both probe measures for the PEFT ``model``: with its adapter disabled and enabled."""
    text, source = general_text()
    model.eval()
    result: dict[str, Any] = {"source": source, "questions": len(KNOWLEDGE)}
    for label in ("base", "adapter"):
        if label == "base":
            with model.disable_adapter():
                ppl = perplexity(model, tokenizer, text)
                known = knowledge(model, tokenizer, new_tokens)
        else:
            ppl = perplexity(model, tokenizer, text)
            known = knowledge(model, tokenizer, new_tokens)
        result[label] = {"text_perplexity": ppl, "knowledge": known["score"]}
        result[f"{label}_answered"] = known["answered"]
    return result | judge(result)


def judge(result: dict[str, Any], thresholds: dict[str, float] = THRESHOLDS) -> dict[str, Any]:
    """The probe's change (adapter vs base) and whether it is worse beyond ``thresholds``."""
    base, adapter = result["base"], result["adapter"]
    ratio = adapter["text_perplexity"] / max(base["text_perplexity"], 1e-9)
    drop = base["knowledge"] - adapter["knowledge"]
    reasons = []
    if ratio > thresholds["perplexity_ratio"]:
        reasons.append(f"general-text perplexity x{ratio:.2f}")
    if drop > thresholds["knowledge_drop"] + 1e-9:
        reasons.append(f"general knowledge {base['knowledge']:.0%} → {adapter['knowledge']:.0%}")
    return {
        "change": {"perplexity_ratio": ratio, "knowledge_drop": drop},
        "thresholds": dict(thresholds),
        "worse": bool(reasons),
        "reasons": reasons,
    }


def probe_run(run_dir: Path, home: Path) -> dict[str, Any]:
    """The probe of a finished run, computed once and kept in its manifest (``forgetting``)."""
    run = read_manifest(run_dir, "finetune")
    if "forgetting" in run:
        return dict(run["forgetting"])
    from training.base import BaseModel, load_tokenizer
    from training.finetune import load_adapter

    base = BaseModel(run["base"]["name"], Path(run["base"]["path"]), run["base"]["kind"])
    result = probe_model(load_adapter(run_dir, home, base), load_tokenizer(base, home))
    write_manifest(run_dir, {**read_manifest(run_dir, "finetune"), "forgetting": result})
    return result


def gate(
    run_dir: Path, home: Path, strict: bool, notify: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Export's check: the run's probe; a warning (``notify``) or, ``strict``, a refusal.

    Raises:
        TrainingError: ``strict`` and the probe got worse beyond the thresholds.
    """
    result = probe_run(run_dir, home)
    if result["worse"]:
        what = "; ".join(result["reasons"])
        line = (
            f"forgetting probe: the adapter is worse than the base outside its data ({what}; "
            f"limits x{result['thresholds']['perplexity_ratio']:.2f} perplexity, "
            f"-{result['thresholds']['knowledge_drop']:.0%} knowledge)"
        )
        if strict:
            raise TrainingError(f"export refused under --strict: {line}")
        if notify is not None:
            notify(f"warning: {line}")
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(label, base, adapter) rows for the evaluate table."""
    b, a = result["base"], result["adapter"]
    return [
        ("general_ppl", b["text_perplexity"], a["text_perplexity"]),
        ("knowledge", b["knowledge"], a["knowledge"]),
    ]
