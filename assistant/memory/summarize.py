"""Running summaries written by the model itself, in chunks that fit its context.

A small model sometimes writes nothing (greedy decoding can pick the end token first). The
chunk is then asked again with a little sampling, and if that is empty too the summary is
built from the messages themselves (their first sentences), so a compaction always leaves
a summary row that says what was folded away.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from assistant.backends.base import Backend, ChatMessage, GenerationOptions, Token
from assistant.memory.strategies import summary_prompt
from assistant.thinking import backend_thinks, split_thinking

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


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
        text = _generate(backend, summary, chunk, max_tokens, conversation_id)
        if not text:
            log.info("the model wrote an empty summary; using the messages' first sentences")
            text = extractive_summary(summary, chunk)
        summary = trim_to_tokens(text, max_tokens, backend)
    return summary or ""


def _generate(
    backend: Backend,
    summary: str | None,
    chunk: list[ChatMessage],
    max_tokens: int,
    conversation_id: str | None,
) -> str:
    """The model's summary of ``chunk``: greedy first, then once with light sampling."""
    for temperature in (0.0, 0.7):
        options = GenerationOptions(
            max_tokens=max_tokens,
            temperature=temperature,
            seed=0,
            conversation_id=conversation_id,
        )
        parts = [
            e.text
            for e in backend.stream(summary_prompt(summary, chunk), options)
            if isinstance(e, Token)
        ]
        text = "".join(parts).strip()
        if backend_thinks(backend):  # a reasoning model's <think> is not summary
            text = split_thinking(text)[1]
        if text:
            return text
    return ""


def extractive_summary(previous: str | None, messages: Sequence[ChatMessage]) -> str:
    """A summary without the model: the previous one, then each message's first sentence."""
    lines = [previous] if previous else []
    for message in messages:
        words = " ".join(message["content"].split())
        if words:
            first = _SENTENCE_END.split(words, maxsplit=1)[0]
            lines.append(f"{message['role'].capitalize()}: {first}")
    return "\n".join(lines)


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
