"""Export a conversation to JSON (lossless) or Markdown (to read), and import JSON back."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.memory.records import Conversation, Message, Summary
from assistant.memory.store import MemoryStore
from assistant.memory.transfer_versions import export_versions, import_versions

FORMAT = "assistant-conversation"
VERSION = 1
# Database ids are local to one file; the export names rows by position instead.
_MESSAGE_SKIP = {"id", "conversation_id", "summary_id"}
# What import_json reads from each part of an export (export_json writes all of them).
_REQUIRED = {
    "conversation": (
        "id", "strategy", "system_prompt", "model", "adapter", "title", "created_at",
        "marked_for_training", "prompt_start_seq", "updated_at",
    ),
    "summaries": ("content", "through_seq", "model", "created_at", "edited_at"),
    "messages": ("role", "content"),
}  # fmt: skip
# A hand-edited export can still fail as rows are written (a list where a number goes, an
# index past the summaries): the transaction is rolled back and the file named as damaged.
_ROW_ERRORS = (
    KeyError, TypeError, ValueError, IndexError,
    sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
)  # fmt: skip
_AGAIN = "export it again with `assistant history export ID --format json`"


def export_json(store: MemoryStore, conversation_id: str) -> dict[str, Any]:
    """Everything stored about one conversation, as a JSON-ready dict."""
    conversation = store.conversation(conversation_id)
    summaries = store.summaries(conversation.id)
    index = {s.id: i for i, s in enumerate(summaries)}
    messages = []
    for m in store.messages(conversation.id):
        row = {k: v for k, v in dataclasses.asdict(m).items() if k not in _MESSAGE_SKIP}
        row["summary"] = index.get(m.summary_id) if m.summary_id is not None else None
        messages.append(row)
    return {
        "format": FORMAT,
        "version": VERSION,
        "conversation": dataclasses.asdict(conversation),
        "summaries": [
            {k: v for k, v in dataclasses.asdict(s).items() if k not in ("id", "conversation_id")}
            for s in summaries
        ],
        "messages": messages,
        # Earlier versions, ratings and preference pairs, when there are any.
        **({"versions": versions} if (versions := export_versions(store, conversation.id)) else {}),
    }


def import_json(store: MemoryStore, data: Any, *, new_id: str | None = None) -> Conversation:
    """Recreate an exported conversation (under ``new_id`` if given); return it.

    ``data`` is whatever the file held; nothing is written unless all of it imports.

    Raises:
        AssistantError: not an export of this program, a damaged one, or the id is taken.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise AssistantError(
            f"not a conversation export (expected format {FORMAT!r} version {VERSION}); "
            "export one with `assistant history export ID --format json`"
        )
    _check_shape(data)
    try:
        return _insert(store, data, new_id)
    except _ROW_ERRORS as exc:
        raise AssistantError(f"a damaged conversation export ({exc!r}); {_AGAIN}") from exc


def _check_shape(data: dict[str, Any]) -> None:
    """Refuse an export that lacks a part or a field ``import_json`` reads."""
    for part, keys in _REQUIRED.items():
        rows = data.get(part)
        rows = [rows] if part == "conversation" else rows
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            kind = "an object" if part == "conversation" else "a list of objects"
            raise AssistantError(
                f"a damaged conversation export ({part!r} is not {kind}); {_AGAIN}"
            )
        for i, row in enumerate(rows):
            missing = [key for key in keys if key not in row]
            if missing:
                where = part if part == "conversation" else f"{part}[{i}]"
                raise AssistantError(
                    f"a damaged conversation export ({where} lacks {', '.join(missing)}); {_AGAIN}"
                )


def _insert(store: MemoryStore, data: dict[str, Any], new_id: str | None) -> Conversation:
    """Write a checked export in one transaction and return the new conversation."""
    conv = dict(data["conversation"])
    conv_id = new_id or conv["id"]
    with store.write():
        store.create_conversation(
            strategy=conv["strategy"],
            system_prompt=conv["system_prompt"],
            model=conv["model"],
            adapter=conv["adapter"],
            title=conv["title"],
            conversation_id=conv_id,
            created_at=conv["created_at"],
        )
        summary_ids = [
            store.add_summary(
                conv_id,
                s["content"],
                s["through_seq"],
                model=s["model"],
                created_at=s["created_at"],
                edited_at=s["edited_at"],
            ).id
            for s in data["summaries"]
        ]
        active: list[int] = []
        for m in data["messages"]:
            fields = {k: v for k, v in m.items() if k not in ("seq", "role", "content", "summary")}
            summary = m.get("summary")
            fields["summary_id"] = summary_ids[summary] if summary is not None else None
            fields["memory"] = fields.get("memory") or None
            active.append(store.add_message(conv_id, m["role"], m["content"], **fields).id)
        import_versions(store, conv_id, data.get("versions"), active)
        store.update_conversation(
            conv_id,
            marked_for_training=int(conv["marked_for_training"]),
            prompt_start_seq=conv["prompt_start_seq"],
            updated_at=conv["updated_at"],
        )
    return store.conversation(conv_id)


def export_markdown(
    store: MemoryStore, conversation_id: str, *, notes: dict[int, str] | None = None
) -> str:
    """A readable Markdown transcript of one conversation (``notes`` by message id go
    after each heading: ``history show`` gives ids, versions and ratings)."""
    conversation = store.conversation(conversation_id)
    lines = [f"# {conversation.title or 'Conversation ' + conversation.id}", ""]
    lines.append(
        f"- id: `{conversation.id}`\n- created: {conversation.created_at}\n"
        f"- model: {conversation.model or '-'}\n- memory: {conversation.strategy}"
    )
    if conversation.system_prompt:
        lines += ["", "## System", "", conversation.system_prompt]
    for message in store.messages(conversation.id):
        note = f" — {notes[message.id]}" if notes and message.id in notes else ""
        lines += ["", _heading(message) + note, "", message.content or "_(empty)_"]
    summaries: list[Summary] = store.summaries(conversation.id)
    if summaries:
        lines += ["", "## Summary", "", summaries[-1].content]
    return "\n".join(lines) + "\n"


def _heading(message: Message) -> str:
    note = f" _({message.status})_" if message.status != "complete" else ""
    return f"## {message.role.capitalize()}{note}"


def read_export(path: Path) -> Any:
    """The JSON in an export file (UTF-8, a byte order mark allowed), not yet checked.

    Raises:
        AssistantError: unreadable, not UTF-8, or not JSON; the message names the file and
            where in it.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AssistantError(f"{path}: cannot read it ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[raw.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8")) + 1
        byte = raw[exc.start]
        raise AssistantError(
            f"{path}: not UTF-8 (byte 0x{byte:02x} at line {line}, column {column}); {_AGAIN}"
        ) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise AssistantError(
            f"{path}: nested too deeply (over ~1000 levels of [ or {{); not a conversation export"
        ) from None
    except json.JSONDecodeError as exc:
        raise AssistantError(f"{path}: not JSON ({exc}); {_AGAIN}") from None


def dumps(data: dict[str, Any]) -> str:
    """Serialize an export (stable key order, UTF-8 kept readable)."""
    return json.dumps(data, indent=2, ensure_ascii=False)
