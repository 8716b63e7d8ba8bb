"""Export a conversation to JSON (lossless) or Markdown (to read), and import JSON back."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from assistant.errors import AssistantError
from assistant.memory.records import Conversation, Message, Summary
from assistant.memory.store import MemoryStore

FORMAT = "assistant-conversation"
VERSION = 1
# Database ids are local to one file; the export names rows by position instead.
_MESSAGE_SKIP = {"id", "conversation_id", "summary_id"}


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
    }


def import_json(
    store: MemoryStore, data: dict[str, Any], *, new_id: str | None = None
) -> Conversation:
    """Recreate an exported conversation (under ``new_id`` if given); return it.

    Raises:
        AssistantError: not an export of this program, or the id is already taken.
    """
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise AssistantError(
            f"not a conversation export (expected format {FORMAT!r} version {VERSION}); "
            "export one with `assistant history export ID --format json`"
        )
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
        for m in data["messages"]:
            fields = {k: v for k, v in m.items() if k not in ("seq", "role", "content", "summary")}
            summary = m.get("summary")
            fields["summary_id"] = summary_ids[summary] if summary is not None else None
            fields["memory"] = fields.get("memory") or None
            store.add_message(conv_id, m["role"], m["content"], **fields)
        store.update_conversation(
            conv_id,
            marked_for_training=int(conv["marked_for_training"]),
            prompt_start_seq=conv["prompt_start_seq"],
            updated_at=conv["updated_at"],
        )
    return store.conversation(conv_id)


def export_markdown(store: MemoryStore, conversation_id: str) -> str:
    """A readable Markdown transcript of one conversation."""
    conversation = store.conversation(conversation_id)
    lines = [f"# {conversation.title or 'Conversation ' + conversation.id}", ""]
    lines.append(
        f"- id: `{conversation.id}`\n- created: {conversation.created_at}\n"
        f"- model: {conversation.model or '-'}\n- memory: {conversation.strategy}"
    )
    if conversation.system_prompt:
        lines += ["", "## System", "", conversation.system_prompt]
    for message in store.messages(conversation.id):
        lines += ["", _heading(message), "", message.content or "_(empty)_"]
    summaries: list[Summary] = store.summaries(conversation.id)
    if summaries:
        lines += ["", "## Summary", "", summaries[-1].content]
    return "\n".join(lines) + "\n"


def _heading(message: Message) -> str:
    note = f" _({message.status})_" if message.status != "complete" else ""
    return f"## {message.role.capitalize()}{note}"


def dumps(data: dict[str, Any]) -> str:
    """Serialize an export (stable key order, UTF-8 kept readable)."""
    return json.dumps(data, indent=2, ensure_ascii=False)
