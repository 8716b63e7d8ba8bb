"""Storing a reply as it streams, whatever mode wrote it.

The reply row is written every :data:`FLUSH_INTERVAL_S` or :data:`FLUSH_TOKENS` pieces, so
a kill -9 loses at most that much of what was shown (the app shows new text at 10 Hz, the
same pace); it is finalized when the stream ends. Each write costs about a millisecond, so
writing every token would slow a small model's stream by several percent. A reply cut short
(an error, the caller closing the stream, a cancelled generation) is kept and marked
"interrupted"; a killed process leaves it "streaming", which the next open of the store
turns into "interrupted".
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import TYPE_CHECKING, Any

from assistant.backends.base import Done, Token
from assistant.thinking import Thinking, separate_thinking

if TYPE_CHECKING:
    from assistant.memory.records import Message
    from assistant.memory.store import MemoryStore


FLUSH_INTERVAL_S = 0.1
FLUSH_TOKENS = 8


@dataclass(frozen=True)
class FactStored:
    """The user's "remember that ..." was stored as a fact (say so to the user)."""

    fact: str


@dataclass(frozen=True)
class FinalText:
    """The reply's whole text, replacing what streamed (the agent's final answer)."""

    text: str
    steps: list[Any] = field(default_factory=list)


def title_for(text: str, limit: int = 60) -> str:
    """A conversation title from its first message: one line, at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def stream_reply(
    store: MemoryStore,
    reply: Message,
    events: Iterable[Any],
    flush: tuple[float, int] = (FLUSH_INTERVAL_S, FLUSH_TOKENS),
    *,
    opened: bool = False,
    thinks: bool = True,
) -> Iterator[Any]:
    """Pass ``events`` through while storing the reply they write into ``reply``.

    A reasoning model's ``<think>`` blocks come out as :class:`Thinking` events and are
    stored in ``reasoning``, apart from ``content`` (``opened``: the prompt opened one;
    ``thinks=False``: the model writes none, so its text is all answer, tags and all).
    """
    interval_s, every = flush
    parts: list[str] = []
    thinking: list[str] = []
    flushed_at, flushed_n, pieces = time.monotonic(), 0, 0
    done: Done | None = None
    final: FinalText | None = None
    memory = dict(reply.memory)
    try:
        for event in separate_thinking(events, opened) if thinks else events:
            if isinstance(event, Token | Thinking):
                if isinstance(event, Token):
                    parts.append(event.text)
                else:
                    if event.moved:  # streamed as the answer, it was reasoning
                        parts.clear()
                    thinking.append(event.text)
                pieces += 1
                due = time.monotonic() - flushed_at >= interval_s
                if due or pieces - flushed_n >= every:
                    reasoning = {"reasoning": "".join(thinking)} if thinking else {}
                    store.update_message(reply.id, content="".join(parts), **reasoning)
                    flushed_at, flushed_n = time.monotonic(), pieces
            elif isinstance(event, Done):
                done = event
            elif isinstance(event, FinalText):
                final = event
            elif hasattr(event, "as_memory"):  # the sources of a documents answer
                memory["sources"] = event.as_memory()
                store.update_message(reply.id, memory=memory)
            yield event
    finally:
        content = final.text if final is not None else "".join(parts)
        fields: dict[str, Any] = {"content": content, "writer": None, "memory": memory}
        if thinking:
            fields["reasoning"] = "".join(thinking).strip()
        if final is not None:
            fields["steps"] = [_plain(s) for s in final.steps]
            fields["status"] = "complete"
        if done is not None:
            fields.update(
                status="interrupted" if done.finish_reason == "cancelled" else "complete",
                finish_reason=done.finish_reason,
                prompt_tokens=done.usage.prompt_tokens,
                completion_tokens=done.usage.completion_tokens,
                cached_tokens=done.usage.cached_tokens,
            )
        elif final is None:
            fields["status"] = "interrupted"
        store.update_message(reply.id, **fields)


def _plain(step: Any) -> Any:
    """A step as JSON-ready data (agent steps are dataclasses)."""
    return asdict(step) if is_dataclass(step) and not isinstance(step, type) else step
