"""Preference data: chosen / rejected pairs → a data directory for DPO or ORPO.

Input lines follow TRL's convention, ``{"prompt", "chosen", "rejected"}``: the prompt is a
string (one user message) or a list of ``{"role", "content"}`` messages; chosen and rejected
are strings or a one-message assistant list. Pairs also come from the memory store (the
user's thumbs and /compare picks, marked conversations only). Each pair is rendered with the
base model's chat template; the split holds out whole conversations, so the held-out pairs
of a conversation were never trained on (the personal evaluation scores them).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.registry import file_problem
from training.manifest import TrainingError, digest, existing_result, require_free, write_manifest
from training.pii import scrub_pii
from training.prepare import Messages, _check_text, _decode, _text_bytes, parse_line

KIND = "preferences"


@dataclass(frozen=True)
class Pair:
    """One preference: the conversation so far, the reply preferred and the one not."""

    prompt: Messages
    chosen: str
    rejected: str
    source: str = "file"  # "file", or the store's provenance ("compare", "rating", ...)
    group: str = ""  # the conversation it came from: the split keeps a group together


def parse_pair(raw: Any) -> tuple[Messages, str, str]:
    """Turn one decoded JSONL record into (prompt messages, chosen, rejected).

    Raises:
        ValueError: the record is not a preference pair.
    """
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in raw]
    if missing:
        raise ValueError(f"expected 'prompt', 'chosen' and 'rejected' (missing {missing[0]!r})")
    prompt = raw["prompt"]
    if isinstance(prompt, str):
        _check_text(prompt, "'prompt'")
        messages: Messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, list) and prompt:
        # the chat rules of SFT examples, with a stand-in answer the prompt must not end with
        messages = parse_line({"messages": [*prompt, {"role": "assistant", "content": "x"}]})[:-1]
        if messages[-1]["role"] == "assistant":
            raise ValueError("the prompt must end with a user (or system) message")
    else:
        raise ValueError("'prompt' must be a string or a non-empty list of messages")
    chosen, rejected = _reply(raw["chosen"], "chosen"), _reply(raw["rejected"], "rejected")
    if chosen == rejected:
        raise ValueError("'chosen' and 'rejected' are the same text")
    return messages, chosen, rejected


def _reply(value: Any, what: str) -> str:
    """A reply as text: a string, or a list of one assistant message."""
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role") != "assistant":
            raise ValueError(f"{what!r} must be a string or a list of one assistant message")
        value = value[0].get("content")
    if not isinstance(value, str):
        raise ValueError(f"{what!r} must be a string or a list of one assistant message")
    _check_text(value, repr(what))
    return value


def read_pairs(paths: Sequence[Path]) -> tuple[list[Pair], list[str]]:
    """Read preference JSONL files; return the pairs and one ``file:line: problem`` per bad line.

    The same file rules as :func:`training.prepare.read_examples` (UTF-8, a BOM is fine,
    "\\n" ends a record). Each line is its own group for the split.

    Raises:
        TrainingError: a file is missing, a folder, a named pipe, or not UTF-8 text.
    """
    pairs: list[Pair] = []
    problems: list[str] = []
    for path in paths:
        problem = file_problem(path)
        if problem:
            raise TrainingError(f"{problem}; pass JSONL files of preference pairs")
        for number, raw in enumerate(_text_bytes(path).split(b"\n"), 1):
            try:
                line = _decode(raw).removeprefix("\ufeff")
                if line.strip():
                    prompt, chosen, rejected = parse_pair(json.loads(line))
                    pairs.append(Pair(prompt, chosen, rejected, "file", f"{path}:{number}"))
            except RecursionError:
                problems.append(
                    f"{path}:{number}: nested too deeply (over ~1000 levels of [ or {{)"
                )
            except ValueError as exc:
                problems.append(f"{path}:{number}: {exc}")
    return pairs, problems


def pairs_from_store(stored: Sequence[Any]) -> list[Pair]:
    """Pairs from the memory store's ``PreferencePair`` records (already marked-only)."""
    pairs = []
    for p in stored:
        prompt = [
            {"role": m["role"], "content": m["content"]}
            for m in p.prompt
            if m.get("role") in ("system", "user", "assistant")
        ]
        if prompt and p.chosen.strip() and p.rejected.strip() and p.chosen != p.rejected:
            pairs.append(Pair(prompt, p.chosen, p.rejected, p.source, str(p.conversation_id)))
    return pairs


def encode_pair(
    prompt: Messages, chosen: str, rejected: str, tokenizer: Any
) -> dict[str, list[int]]:
    """Token ids of the prompt and of each reply, rendered with the chat template.

    As TRL's ``DPOTrainer`` does: the prompt with the generation prompt, and each reply as
    the assistant message after it; the reply starts where the two renderings diverge.
    """

    def ids(messages: Messages, generation_prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    head = ids(prompt, True)
    good = ids([*prompt, {"role": "assistant", "content": chosen}], False)
    bad = ids([*prompt, {"role": "assistant", "content": rejected}], False)
    n = min(_common(head, good), _common(head, bad))
    return {"prompt_ids": head[:n], "chosen_ids": good[n:], "rejected_ids": bad[n:]}


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


Rows = list[dict[str, Any]]


def split_groups(rows: Rows, val_fraction: float, seed: int) -> tuple[Rows, Rows]:
    """(train, val): whole groups (conversations) go to one side, about val_fraction held out."""
    groups = sorted({r["group"] for r in rows})
    random.Random(seed).shuffle(groups)
    n_val = max(1, round(len(groups) * val_fraction)) if len(groups) > 1 else 0
    held = set(groups[:n_val])
    return [r for r in rows if r["group"] not in held], [r for r in rows if r["group"] in held]


def prepare_preferences(
    pairs: list[Pair],
    out: Path,
    tokenizer: Any,
    base: dict[str, Any],
    *,
    val_fraction: float = 0.1,
    max_length: int = 512,
    seed: int = 0,
    scrub: bool = True,
    problems: Sequence[str] = (),
) -> dict[str, Any]:
    """Tokenize ``pairs`` into ``out/train.jsonl`` and ``out/val.jsonl`` with a manifest.

    Returns the manifest (``kind: preferences``); rerunning with the same inputs returns it.

    Raises:
        TrainingError: no pairs, or ``out`` holds something else.
    """
    if not pairs:
        raise TrainingError(
            "no preference pairs; rate replies (`assistant history rate ID up|down`, thumbs "
            "in the app, /compare picks) in marked conversations, or pass JSONL "
            "prompt/chosen/rejected files"
        )
    if scrub:
        pairs = [
            Pair(
                [{**m, "content": scrub_pii(m["content"])} for m in p.prompt],
                scrub_pii(p.chosen),
                scrub_pii(p.rejected),
                p.source,
                p.group,
            )
            for p in pairs
        ]
    params = {"val_fraction": val_fraction, "max_length": max_length, "seed": seed, "scrub": scrub}
    records: Rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "source": p.source}
        | {"group": p.group}
        for p in pairs
    ]
    data_hash = digest(records)
    key = digest([KIND, data_hash, base, params, tokenizer.chat_template])
    done = existing_result(out, "prepare", key)
    if done is not None:
        return done
    require_free(out)
    rows = []
    for record in records:
        ids = encode_pair(record["prompt"], record["chosen"], record["rejected"], tokenizer)
        longest = len(ids["prompt_ids"]) + max(len(ids["chosen_ids"]), len(ids["rejected_ids"]))
        if longest <= max_length and ids["chosen_ids"] and ids["rejected_ids"]:
            rows.append(record | ids)
    if not rows:
        raise TrainingError(f"every pair is longer than max_length={max_length} tokens")
    random.Random(seed).shuffle(rows)
    train, val = split_groups(rows, val_fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, split_rows in (("train", train), ("val", val)):
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for row in split_rows:
                fh.write(json.dumps(row) + "\n")
    sources: dict[str, int] = {}
    for r in rows:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    return write_manifest(
        out,
        {
            "stage": "prepare",
            "kind": KIND,
            "key": key,
            "base": base,
            "data_hash": data_hash,
            "params": params,
            "chat_template": tokenizer.chat_template,
            "eos_token": tokenizer.eos_token,
            "counts": {
                "train": len(train),
                "val": len(val),
                "pairs": len(rows),
                "too_long": len(records) - len(rows),
                "skipped_lines": len(problems),
                "sources": sources,
            },
            "problems": list(problems)[:100],
        },
    )


def sequence_logps(model: Any, rows: Rows, batch: int = 4) -> list[tuple[float, float]]:
    """Summed log-probabilities of (chosen, rejected) under ``model`` for each row.

    The sums over the reply tokens are what DPO compares (its implicit reward is beta times
    the change of each against the reference model).
    """
    import torch

    pad = 0
    out: list[tuple[float, float]] = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            part = rows[i : i + batch]
            seqs = [r["prompt_ids"] + r[k] for k in ("chosen_ids", "rejected_ids") for r in part]
            starts = [len(r["prompt_ids"]) for _ in (0, 1) for r in part]
            width = max(len(s) for s in seqs)
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            token = torch.gather(logp, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            sums = []
            for j, s in enumerate(seqs):
                sums.append(float(token[j, max(starts[j] - 1, 0) : len(s) - 1].sum()))
            n = len(part)
            out.extend(zip(sums[:n], sums[n:], strict=True))
    return out


def preference_scores(logps: list[tuple[float, float]]) -> dict[str, float]:
    """Accuracy (chosen more likely than rejected) and mean log-prob margin of pairs."""
    margins = [c - r for c, r in logps]
    return {
        "accuracy": sum(m > 0 for m in margins) / max(len(margins), 1),
        "logp_margin": sum(margins) / max(len(margins), 1),
    }
