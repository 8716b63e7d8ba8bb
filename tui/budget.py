"""The context budget: how the model's window is split, counted with its own tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.backends.base import Backend, ChatMessage
from assistant.config import Config

if TYPE_CHECKING:  # the memory package loads sqlite_utils: imported where counted
    from assistant.memory.store import MemoryStore

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


def conversation_budget(
    backend: Backend,
    store: MemoryStore | None,
    conversation_id: str | None,
    *,
    config: Config,
    documents: Sequence[str] = (),
) -> Budget:
    """The next prompt of a conversation, part by part (None: a new one). Reads the store
    and counts with the tokenizer: call it off the UI thread."""
    reserve = min(config.max_tokens, backend.context_length // 2)
    if conversation_id is None or store is None:
        return measure(backend, system=config.system_prompt, documents=documents, reserve=reserve)
    from assistant.memory.conversation_settings import load_settings
    from assistant.memory.session import prompt_history
    from assistant.memory.strategies import StrategySpec

    conversation = store.conversation(conversation_id)
    own_max = load_settings(store, conversation_id).max_tokens  # /set max_tokens
    if own_max is not None:
        reserve = min(own_max, backend.context_length // 2)
    messages = store.messages(conversation_id, conversation.prompt_start_seq)
    memory: list[str] = []
    if StrategySpec.parse(conversation.strategy).uses_summary:
        summary = store.latest_summary(conversation_id)
        if summary is not None:
            memory.append(summary.content)
    if messages:
        memory += [f["content"] for f in messages[-1].memory.get("facts", [])]
    return measure(
        backend,
        system=conversation.system_prompt,
        memory=memory,
        documents=documents,
        history=prompt_history(messages),
        reserve=reserve,
    )
