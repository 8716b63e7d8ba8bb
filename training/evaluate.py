"""Stage 3, evaluate: validation loss, perplexity and ROUGE-L, base vs adapter side by side.

A preference run (DPO / ORPO) adds preference accuracy and reward margin on its held-out
pairs (its loss, perplexity and ROUGE-L are those of the chosen replies). Every run gets the
forgetting probe (:mod:`training.forgetting`) and the personal evaluation: the held-out part
of the user's own marked conversations (never trained on), scored base vs adapter.

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


def _as_examples(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Preference rows as SFT rows of their chosen reply (loss, perplexity, ROUGE-L)."""
    return [
        {
            "messages": [*r["prompt"], {"role": "assistant", "content": r["chosen"]}],
            "input_ids": r["prompt_ids"] + r["chosen_ids"],
            "labels": [-100] * len(r["prompt_ids"]) + r["chosen_ids"],
        }
        for r in pairs
    ]


def _preferences(model: Any, pairs: list[dict[str, Any]], beta: float) -> dict[str, Any]:
    """Preference accuracy and margins on ``pairs``, base vs adapter, and DPO's reward margin.

    ``personal``: the same on the pairs from the user's own store (not from files).
    """
    from training.preferences import preference_scores, sequence_logps

    with model.disable_adapter():
        ref = sequence_logps(model, pairs)
    policy = sequence_logps(model, pairs)
    rewards = [
        beta * ((pc - pr) - (rc - rr)) for (pc, pr), (rc, rr) in zip(policy, ref, strict=True)
    ]
    own = [i for i, r in enumerate(pairs) if r.get("source", "file") != "file"]
    result = {
        "pairs": len(pairs),
        "base": preference_scores(ref),
        "adapter": preference_scores(policy),
        "reward_margin": sum(rewards) / max(len(rewards), 1),
        "reward_accuracy": sum(r > 0 for r in rewards) / max(len(rewards), 1),
    }
    personal: dict[str, Any] = {"kind": "pairs", "examples": len(own)}
    if own:
        personal["base"] = preference_scores([ref[i] for i in own])
        personal["adapter"] = preference_scores([policy[i] for i in own])
    return result | {"personal": personal}


def _personal_replies(model: Any, rows: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Mean log-probability per token of the user's kept replies in held-out conversations."""
    own = [r for r in rows if r.get("conversation_id")]
    personal: dict[str, Any] = {"kind": "replies", "examples": len(own)}
    if own:
        with model.disable_adapter():
            personal["base"] = {"mean_logprob": -_loss(model, own, pad_id)}
        personal["adapter"] = {"mean_logprob": -_loss(model, own, pad_id)}
    return personal


def evaluate(run_dir: Path, home: Path, samples: int = 8, new_tokens: int = 48) -> dict[str, Any]:
    """Score the base model and the adapter on the run's validation split.

    Returns the ``evaluation`` dict: ``base`` and ``adapter`` each with ``val_loss``,
    ``perplexity`` and ``rouge_l``, plus per-sample generations; ``forgetting`` (the probe,
    also kept as the manifest's ``forgetting``), ``personal`` and, for a preference run,
    ``preference``.

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
    extra: dict[str, Any] = {}
    if run.get("data_kind") == "preferences":
        beta = float(run["hyperparameters"].get("beta", 0.1))
        extra["preference"] = _preferences(model, rows, beta)
        extra["personal"] = extra["preference"].pop("personal")
        rows = _as_examples(rows)
    else:
        extra["personal"] = _personal_replies(model, rows, pad_id)
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
    from training.forgetting import probe_model

    forgetting = run.get("forgetting") or probe_model(model, tokenizer)
    result |= extra | {"forgetting": forgetting}
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=2))
    write_manifest(run_dir, {**run, "evaluation": result, "forgetting": forgetting})
    return result


def table(evaluation: dict[str, Any]) -> str:
    """The base vs adapter metrics as a small text table."""
    lines = [f"{'metric':<16}{'base':>12}{'adapter':>12}"]

    def row(label: str, b: float, a: float) -> None:
        lines.append(f"{label:<16}{b:>12.4f}{a:>12.4f}")

    for metric in ("val_loss", "perplexity", "rouge_l"):
        row(metric, evaluation["base"][metric], evaluation["adapter"][metric])
    pref = evaluation.get("preference")
    if pref:
        row("pref_accuracy", pref["base"]["accuracy"], pref["adapter"]["accuracy"])
        row("logp_margin", pref["base"]["logp_margin"], pref["adapter"]["logp_margin"])
        lines.append(f"{'reward_margin':<16}{'':>12}{pref['reward_margin']:>12.4f}")
    forgetting = evaluation.get("forgetting")
    if forgetting:
        from training.forgetting import rows

        lines.append("forgetting probe (general text, general knowledge):")
        for label, b, a in rows(forgetting):
            row(label, b, a)
        verdict = "; ".join(forgetting["reasons"]) or "within the limits"
        lines.append(f"  {'worse: ' if forgetting['worse'] else ''}{verdict}")
    personal = evaluation.get("personal")
    if personal:
        n = personal["examples"]
        if not n:
            lines.append("personal: no held-out example of your own (mark more conversations)")
        elif personal["kind"] == "pairs":
            lines.append(f"personal: your {n} held-out pairs")
            row("pref_accuracy", personal["base"]["accuracy"], personal["adapter"]["accuracy"])
        else:
            lines.append(f"personal: your {n} held-out conversations")
            b, a = personal["base"]["mean_logprob"], personal["adapter"]["mean_logprob"]
            row("mean_logprob", b, a)
    return "\n".join(lines)
