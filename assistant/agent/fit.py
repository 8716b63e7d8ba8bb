"""Fitting a tool's observation into what is left of the context.

A fixed character cut loses the answer when it sits late in a long result (line 7 of a
656-character note). Instead the observation is fitted to the tokens the context has left:
whole when it fits, else the lines that share the most words with the question, in their
original order, with a note saying how much was left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to say which line answers the question.
_STOP = frozenset(
    (
        *("a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from"),
        *("how", "i", "in", "is", "it", "my", "of", "on", "or", "the", "to", "what"),
        *("when", "where", "which", "who", "why", "with", "you", "your"),
    )
)


def _words(text: str) -> set[str]:
    return {w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP}


def fit_observation(text: str, query: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """``text`` cut to ``max_tokens`` tokens, keeping the lines that match ``query`` first.

    Args:
        text: the tool's result.
        query: the question (and the tool input) the result should answer.
        max_tokens: the most tokens the observation may take.
        count: counts tokens with the model's tokenizer.
    """
    if max_tokens <= 0:
        return "[result left out: the context is full]"
    if count(text) <= max_tokens:
        return text
    lines = [line for line in re.split(r"(?<=[.!?])\s+|\n+", text) if line.strip()]
    wanted = _words(query)
    ranked = sorted(
        range(len(lines)), key=lambda i: (-len(_words(lines[i]) & wanted), i)
    )  # best match first, earlier lines first among equals
    note_room = 16
    kept: set[int] = set()
    used = 0
    for i in ranked:
        cost = count(lines[i]) + 1
        if used + cost > max_tokens - note_room:
            continue
        kept.add(i)
        used += cost
    if not kept:  # not even one line fits: its start
        words = text.split()
        while words and count(" ".join(words)) > max_tokens - note_room:
            words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
        head = " ".join(words)
        return f"{head} [… {len(text) - len(head)} characters cut to fit the context]"
    shown = " ".join(lines[i] for i in sorted(kept))
    cut = len(text) - sum(len(lines[i]) for i in kept)
    return f"{shown} [… {cut} characters of {len(text)} cut to fit the context]"
