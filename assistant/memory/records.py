"""Plain records read from the memory database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Conversation:
    """One conversation and its memory settings."""

    id: str
    title: str
    created_at: str
    updated_at: str
    strategy: str
    system_prompt: str | None = None
    model: str | None = None
    adapter: str | None = None
    marked_for_training: bool = False
    prompt_start_seq: int = 0
    # "chat", "documents" or "agent": how this conversation's turns are answered.
    mode: str = "chat"


@dataclass(frozen=True)
class Message:
    """One stored message; ``status`` is "streaming", "complete" or "interrupted"."""

    id: int
    conversation_id: str
    seq: int
    role: str
    content: str
    status: str = "complete"
    prompt_content: str | None = None
    finish_reason: str | None = None
    steps: list[Any] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    model: str | None = None
    adapter: str | None = None
    created_at: str = ""
    updated_at: str = ""
    summary_id: int | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    # A reasoning model's <think> text (never shown to prompts or summaries).
    reasoning: str | None = None

    @property
    def prompt_text(self) -> str:
        """The text this message contributes to prompts."""
        return self.prompt_content if self.prompt_content is not None else self.content


@dataclass(frozen=True)
class Summary:
    """A running summary of a conversation's messages up to ``through_seq``."""

    id: int
    conversation_id: str
    content: str
    through_seq: int
    model: str | None = None
    created_at: str = ""
    edited_at: str | None = None


@dataclass(frozen=True)
class Fact:
    """A long-term fact the user asked the assistant to remember."""

    id: int
    content: str
    created_at: str
    conversation_id: str | None = None


@dataclass(frozen=True)
class SearchHit:
    """One full-text search result; lower ``rank`` is better (bm25)."""

    kind: str  # "message" or "fact"
    id: int
    content: str
    rank: float
    conversation_id: str | None = None
    role: str | None = None
    created_at: str = ""


def conversation_from_row(row: dict[str, Any]) -> Conversation:
    """Build a Conversation from a database row."""
    return Conversation(
        id=row["id"],
        title=row["title"] or "",
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        strategy=row["strategy"],
        system_prompt=row["system_prompt"],
        model=row["model"],
        adapter=row["adapter"],
        marked_for_training=bool(row["marked_for_training"]),
        prompt_start_seq=row["prompt_start_seq"] or 0,
        mode=row.get("mode") or "chat",
    )


def message_from_row(row: dict[str, Any]) -> Message:
    """Build a Message from a database row."""
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        role=row["role"],
        content=row["content"],
        status=row["status"],
        prompt_content=row["prompt_content"],
        finish_reason=row["finish_reason"],
        steps=json.loads(row["steps_json"]) if row["steps_json"] else None,
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cached_tokens=row["cached_tokens"],
        model=row["model"],
        adapter=row["adapter"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        summary_id=row["summary_id"],
        memory=json.loads(row["memory_json"]) if row["memory_json"] else {},
        reasoning=row.get("reasoning"),
    )
