"""Running summaries written by the model itself, in chunks that fit its context."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.backends.base import Backend, ChatMessage, GenerationOptions, Token
from assistant.memory.strategies import summary_prompt


def trim_to_tokens(text: str, max_tokens: int, backend: Backend) -> str:
    """Cut ``text`` at a word boundary so it has at most ``max_tokens`` tokens."""
    if backend.count_tokens(text) <= max_tokens:
        return text
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:  # the most words that fit
        mid = (lo + hi + 1) // 2
        if backend.count_tokens(" ".join(words[:mid])) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def summarize(
    backend: Backend,
    previous: str | None,
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int = 256,
    conversation_id: str | None = None,
) -> str:
    """Ask the model to fold ``messages`` into the ``previous`` summary; return the new one.

    Messages are taken in the largest chunks whose summary prompt fits the context with
    room for ``max_tokens`` of summary, so any amount of history can be folded. The result
    is cut to ``max_tokens`` tokens.
    """
    budget = backend.context_length - max_tokens
    summary = previous
    rest = list(messages)
    while rest:
        take = _largest_fitting_chunk(backend, summary, rest, budget)
        chunk = rest[:take] if take else [_shorten(backend, summary, rest[0], budget)]
        rest = rest[max(take, 1) :]
        options = GenerationOptions(
            max_tokens=max_tokens, temperature=0.0, conversation_id=conversation_id
        )
        parts = [
            e.text
            for e in backend.stream(summary_prompt(summary, chunk), options)
            if isinstance(e, Token)
        ]
        text = "".join(parts).strip()
        summary = trim_to_tokens(text, max_tokens, backend) if text else summary
    return summary or ""


def _largest_fitting_chunk(
    backend: Backend, summary: str | None, messages: list[ChatMessage], budget: int
) -> int:
    lo, hi = 0, len(messages)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if backend.count_prompt_tokens(summary_prompt(summary, messages[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _shorten(
    backend: Backend, summary: str | None, message: ChatMessage, budget: int
) -> ChatMessage:
    """A message too long to summarize whole keeps only the start that fits."""
    room = budget - backend.count_prompt_tokens(
        summary_prompt(summary, [{**message, "content": ""}])
    )
    return {"role": message["role"], "content": trim_to_tokens(message["content"], room, backend)}
