"""The context budget: how the model's window is split, counted with its own tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.backends.base import Backend, ChatMessage

PARTS = ("system", "memory", "documents", "history", "reserve")


@dataclass(frozen=True)
class Budget:
    """Tokens of each part of the prompt, the reply reserve and the whole context."""

    context: int
    system: int = 0
    memory: int = 0
    documents: int = 0
    history: int = 0
    reserve: int = 0

    @property
    def used(self) -> int:
        """Prompt tokens (everything but the reserve)."""
        return self.system + self.memory + self.documents + self.history

    @property
    def free(self) -> int:
        """Tokens left after the prompt and the reserve."""
        return max(0, self.context - self.used - self.reserve)

    def parts(self) -> list[tuple[str, int]]:
        """``(name, tokens)`` in display order."""
        return [(name, getattr(self, name)) for name in PARTS]


def measure(
    backend: Backend,
    *,
    system: str | None,
    memory: Sequence[str] = (),
    documents: Sequence[str] = (),
    history: Sequence[ChatMessage] = (),
    reserve: int = 0,
) -> Budget:
    """Count each part with the backend's tokenizer (chat markup included for messages)."""
    sys_tokens = (
        backend.count_prompt_tokens([{"role": "system", "content": system}]) if system else 0
    )
    return Budget(
        context=backend.context_length,
        system=sys_tokens,
        memory=sum(backend.count_tokens(text) for text in memory if text),
        documents=sum(backend.count_tokens(text) for text in documents if text),
        history=backend.count_prompt_tokens(list(history)) if history else 0,
        reserve=reserve,
    )
