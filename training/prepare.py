"""Stage 1, prepare: training files → tokenized train/validation sets in a data directory.

Input lines are either chat examples ``{"messages": [{"role", "content"}, ...]}`` or
instruction pairs ``{"instruction", "input"?, "output"}``. Each example is rendered with the
base model's own chat template; only assistant turns are supervised (every other token's
label is -100).
"""

from __future__ import annotations

import codecs
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.registry import file_problem
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
            role = msg.get("role") if isinstance(msg, dict) else None
            if not isinstance(role, str) or role not in _ROLES:
                raise ValueError(f"message {i} needs a role of system, user or assistant")
            if not isinstance(msg.get("content"), str):
                raise ValueError(f"message {i} needs a string 'content'")
            _check_text(msg["content"], f"message {i} ({role})")
            out.append({"role": role, "content": msg["content"]})
        if out[-1]["role"] != "assistant":
            raise ValueError("the last message must be the assistant's (the answer to learn)")
        return out
    if "instruction" in raw and "output" in raw:
        parts = [raw["instruction"], raw.get("input") or ""]
        if not all(isinstance(p, str) for p in [*parts, raw["output"]]):
            raise ValueError("'instruction', 'input' and 'output' must be strings")
        _check_text(raw["instruction"], "'instruction'")
        if parts[1]:
            _check_text(parts[1], "'input'", empty_ok=True)
        _check_text(raw["output"], "'output'")
        prompt = "\n\n".join(p for p in parts if p.strip())
        return [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": raw["output"]},
        ]
    raise ValueError("expected 'messages' or 'instruction' and 'output'")


def _check_text(text: str, what: str, empty_ok: bool = False) -> None:
    """Refuse an empty turn (nothing to learn or to answer) and text no tokenizer takes."""
    if not empty_ok and not text.strip():
        raise ValueError(f"{what} is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone "\ud800"-style escape decodes to no character
        code = ord(text[exc.start])
        raise ValueError(f"{what} has an unpaired surrogate (\\u{code:04x})") from None


_WIDE_BOMS = [
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16: its mark starts the same way
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
]


def read_examples(paths: Sequence[Path]) -> tuple[list[Messages], list[str]]:
    """Read JSONL files; return the examples and one ``file:line: problem`` per bad line.

    Files are UTF-8, with or without a byte order mark; only "\\n" ends a record (JSON
    strings may hold U+2028 and the like).

    Raises:
        TrainingError: a file is missing, a folder or a named pipe, or is not UTF-8 text at
            all (binary, UTF-16).
    """
    examples: list[Messages] = []
    problems: list[str] = []
    for path in paths:
        problem = file_problem(path)
        if problem:
            raise TrainingError(f"{problem}; pass JSONL files of training examples")
        data = _text_bytes(path)
        for number, raw in enumerate(data.split(b"\n"), 1):
            try:
                line = _decode(raw).removeprefix("\ufeff")  # files joined by `cat` keep theirs
                if line.strip():
                    examples.append(parse_line(json.loads(line)))
            except RecursionError:
                problems.append(
                    f"{path}:{number}: nested too deeply (over ~1000 levels of [ or {{)"
                )
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                problems.append(f"{path}:{number}: {exc}")
    return examples, problems


def _text_bytes(path: Path) -> bytes:
    """The bytes of a JSONL file; refuse one that is not UTF-8 text (a BOM is fine)."""
    data = path.read_bytes()
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            raise TrainingError(f"{path}:1: {name} text; save the file as UTF-8 and rerun")
    nul = data.find(b"\0")  # never in JSON text: a compressed or binary file, not one bad line
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise TrainingError(
            f"{path}:{line}: binary data, not JSONL text (a NUL byte); "
            "pass a UTF-8 JSONL file (decompress or convert it first)"
        )
    return data


def _decode(raw: bytes) -> str:
    """One line as text; the error names the first byte that is not UTF-8, and its column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8")) + 1
        raise ValueError(
            f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); save the file as UTF-8"
        ) from None


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
    conversations: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Tokenize ``examples`` into ``out/train.jsonl`` and ``out/val.jsonl`` with a manifest.

    ``conversations`` names, per example, the stored conversation it came from (None: a
    file). Those rows keep their ``conversation_id``, and ``val_fraction`` of them (at least
    one, given two) is held out: the personal evaluation scores them, never trained on.
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
    owners = list(conversations) if conversations and any(conversations) else None
    key = digest([data_hash, base, params, tokenizer.chat_template, *([owners] if owners else [])])
    done = existing_result(out, "prepare", key)
    if done is not None:
        return done
    require_free(out)
    rows: list[dict[str, Any]] = [
        {"messages": ex, **encode(ex, tokenizer, max_length)} for ex in examples
    ]
    if owners:
        for row, owner in zip(rows, owners, strict=True):
            if owner:
                row["conversation_id"] = owner
    rows = [r for r in rows if any(label != -100 for label in r["labels"])]
    if not rows:
        raise TrainingError(f"every example is longer than max_length={max_length} tokens")
    random.Random(seed).shuffle(rows)
    own = [r for r in rows if r.get("conversation_id")]
    if own:  # hold out the user's own conversations too (personal evaluation)
        files = [r for r in rows if not r.get("conversation_id")]
        n_own = max(1, round(len(own) * val_fraction)) if len(own) > 1 else 0
        n_files = round(len(files) * val_fraction) if files else 0
        splits = {
            "val": own[:n_own] + files[:n_files],
            "train": own[n_own:] + files[n_files:],
        }
    else:
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
                "personal_val": sum(1 for r in splits["val"] if r.get("conversation_id")),
                "skipped_lines": len(problems),
            },
            "problems": list(problems)[:100],
        },
    )


def load_split(data_dir: Path, split: str) -> list[dict[str, Any]]:
    """The rows of ``train`` or ``val`` in a prepared data directory."""
    path = data_dir / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
