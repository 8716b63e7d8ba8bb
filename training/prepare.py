"""Stage 1, prepare: training files → tokenized train/validation sets in a data directory.

Input lines are either chat examples ``{"messages": [{"role", "content"}, ...]}`` or
instruction pairs ``{"instruction", "input"?, "output"}``. Each example is rendered with the
base model's own chat template; only assistant turns are supervised (every other token's
label is -100).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.manifest import TrainingError, digest, existing_result, require_free, write_manifest
from training.pii import scrub_pii

Messages = list[dict[str, str]]
_ROLES = {"system", "user", "assistant"}


def parse_line(raw: Any) -> Messages:
    """Turn one decoded JSONL record into a message list.

    Raises:
        ValueError: the record is neither a chat example nor an instruction pair.
    """
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    if "messages" in raw:
        messages = raw["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list")
        out: Messages = []
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in _ROLES:
                raise ValueError(f"message {i} needs a role of system, user or assistant")
            if not isinstance(msg.get("content"), str):
                raise ValueError(f"message {i} needs a string 'content'")
            out.append({"role": msg["role"], "content": msg["content"]})
        if out[-1]["role"] != "assistant":
            raise ValueError("the last message must be the assistant's (the answer to learn)")
        return out
    if "instruction" in raw and "output" in raw:
        parts = [raw["instruction"], raw.get("input") or ""]
        if not all(isinstance(p, str) for p in [*parts, raw["output"]]):
            raise ValueError("'instruction', 'input' and 'output' must be strings")
        if not raw["output"].strip():
            raise ValueError("'output' is empty")
        prompt = "\n\n".join(p for p in parts if p.strip())
        return [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": raw["output"]},
        ]
    raise ValueError("expected 'messages' or 'instruction' and 'output'")


def read_examples(paths: Sequence[Path]) -> tuple[list[Messages], list[str]]:
    """Read JSONL files; return the examples and one ``file:line: problem`` per bad line."""
    examples: list[Messages] = []
    problems: list[str] = []
    for path in paths:
        if not path.is_file():
            raise TrainingError(f"no file at {path}; pass JSONL files of training examples")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                examples.append(parse_line(json.loads(line)))
            except ValueError as exc:  # JSONDecodeError is a ValueError
                problems.append(f"{path}:{number}: {exc}")
    return examples, problems


def examples_from_conversations(
    conversations: Sequence[Sequence[dict[str, str]]],
) -> list[Messages]:
    """Training examples from stored conversations the user marked for training.

    Each conversation is a list of ``{"role", "content"}`` messages; trailing user turns
    (no answer to learn) are dropped, and conversations without an answer are skipped.
    """
    examples: list[Messages] = []
    for conversation in conversations:
        messages = [
            {"role": m["role"], "content": m["content"]}
            for m in conversation
            if m.get("role") in _ROLES
        ]
        while messages and messages[-1]["role"] != "assistant":
            messages.pop()
        if any(m["role"] == "user" for m in messages):
            examples.append(messages)
    return examples


def encode(messages: Messages, tokenizer: Any, max_length: int) -> dict[str, list[int]]:
    """Render with the chat template and mask everything but assistant turns (-100)."""

    def ids(msgs: Messages, prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=prompt)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    input_ids = ids(messages, False)
    labels = [-100] * len(input_ids)
    for i, msg in enumerate(messages):
        if msg["role"] == "assistant":
            start, end = len(ids(messages[:i], True)), len(ids(messages[: i + 1], False))
            labels[start:end] = input_ids[start:end]
    return {"input_ids": input_ids[:max_length], "labels": labels[:max_length]}


def prepare(
    examples: list[Messages],
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
    """Tokenize ``examples`` into ``out/train.jsonl`` and ``out/val.jsonl`` with a manifest.

    Returns the manifest. Rerunning with the same inputs returns the existing manifest.

    Raises:
        TrainingError: no examples, or ``out`` holds something else.
    """
    if not examples:
        raise TrainingError("no valid training examples; see the reported lines")
    if scrub:
        examples = [[{**m, "content": scrub_pii(m["content"])} for m in ex] for ex in examples]
    params = {"val_fraction": val_fraction, "max_length": max_length, "seed": seed, "scrub": scrub}
    data_hash = digest(examples)
    key = digest([data_hash, base, params, tokenizer.chat_template])
    done = existing_result(out, "prepare", key)
    if done is not None:
        return done
    require_free(out)
    rows: list[dict[str, Any]] = [
        {"messages": ex, **encode(ex, tokenizer, max_length)} for ex in examples
    ]
    rows = [r for r in rows if any(label != -100 for label in r["labels"])]
    if not rows:
        raise TrainingError(f"every example is longer than max_length={max_length} tokens")
    random.Random(seed).shuffle(rows)
    n_val = max(1, round(len(rows) * val_fraction)) if len(rows) > 1 else 0
    splits = {"val": rows[:n_val], "train": rows[n_val:]}
    out.mkdir(parents=True, exist_ok=True)
    for split, split_rows in splits.items():
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for row in split_rows:
                fh.write(json.dumps(row) + "\n")
    supervised = sum(sum(lb != -100 for lb in r["labels"]) for r in rows)
    return write_manifest(
        out,
        {
            "stage": "prepare",
            "key": key,
            "base": base,
            "data_hash": data_hash,
            "params": params,
            "chat_template": tokenizer.chat_template,
            "eos_token": tokenizer.eos_token,
            "counts": {
                "train": len(splits["train"]),
                "val": len(splits["val"]),
                "supervised_tokens": supervised,
                "skipped_lines": len(problems),
            },
            "problems": list(problems)[:100],
        },
    )


def load_split(data_dir: Path, split: str) -> list[dict[str, Any]]:
    """The rows of ``train`` or ``val`` in a prepared data directory."""
    path = data_dir / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
