"""Documents as a responder: numbered sources fitted into the turn owner's budget.

The sources go in the new user message only (stored history keeps the bare question, so
earlier turns' sources never pile up in later prompts), cut to ``source_tokens`` with the
model's tokenizer; the memory strategy then fits the history around them. With nothing
relevant found, the reply says so instead of inventing one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from assistant.backends.base import Backend, Token
from assistant.memory.summarize import trim_to_tokens
from assistant.rag.answer import (
    NOTHING_FOUND,
    SYSTEM,
    citation_stream,
    citations,
    question_with_sources,
    relevant,
    source_blocks,
)
from assistant.rag.cite import Encode
from assistant.rag.index import Hit
from assistant.responders import Sources, Turn, fixed_reply

Search = Callable[[str], list[Hit]]


class DocumentsResponder:
    """Answer from the user's documents, citing them as [n]."""

    mode = "documents"

    def __init__(
        self,
        backend: Backend,
        search: Search,
        *,
        min_similarity: float,
        encode: Encode | None = None,
        source_tokens: int | None = None,
    ) -> None:
        self.backend = backend
        self.search = search
        self.min_similarity = min_similarity
        self.encode = encode
        # At most a third of the context for sources, by default.
        self.source_tokens = source_tokens or backend.context_length // 3
        self.hits: list[Hit] = []

    def system_prompt(self, conversation_prompt: str | None) -> str:
        """The citation instructions, then the conversation's own system prompt."""
        return SYSTEM + (f"\n\n{conversation_prompt}" if conversation_prompt else "")

    def user_prompt(self, question: str, shown: str) -> str:
        """Search for ``question``; the message shows the relevant sources, then ``shown``."""
        self.hits = relevant(self.search(question), self.min_similarity)
        if not self.hits:
            return shown
        return question_with_sources(shown, self._fitted_blocks())

    def overhead(self) -> int:
        """Nothing outside the plan (the sources are in it)."""
        return 0

    def respond(self, turn: Turn) -> Iterator[Any]:
        """Stream the cited answer, then the Sources it was given and cites."""
        if not self.hits:
            yield Sources([], found=False)
            yield from fixed_reply(NOTHING_FOUND)
            return
        citer = citation_stream(self.encode, self.hits)
        events = self.backend.stream(turn.plan.messages, turn.options)
        parts: list[str] = []
        for event in events if citer is None else citer(events):
            if isinstance(event, Token):
                parts.append(event.text)
            yield event
        text = "".join(parts)
        attributed = citer.added if citer is not None else []
        yield Sources(self.hits, citations(text, len(self.hits)), attributed)

    def _fitted_blocks(self) -> list[str]:
        blocks: list[str] = []
        left = self.source_tokens
        for block in source_blocks(self.hits, max_chars=10**9):
            if left <= 8:
                break
            fitted = trim_to_tokens(block, left, self.backend)
            blocks.append(fitted)
            left -= self.backend.count_tokens(fitted) + 2
        self.hits = self.hits[: len(blocks)]
        return blocks
