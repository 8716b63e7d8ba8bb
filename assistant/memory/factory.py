"""Build memory objects from a :class:`~assistant.config.Config` (the CLI and the app)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.backends.base import Backend
from assistant.config import Config
from assistant.memory.conversation_settings import ConversationSettings, load_settings
from assistant.memory.reply import FLUSH_INTERVAL_S
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore
from assistant.memory.strategies import StrategySpec
from assistant.paths import DataPaths
from assistant.services import generation_options


def open_store(config: Config) -> MemoryStore:
    """Open the memory database in the configured data directory."""
    return MemoryStore.open(DataPaths(config.home).memory_db)


def open_session(
    config: Config,
    store: MemoryStore,
    backend: Backend,
    *,
    conversation_id: str | None = None,
    strategy: str | None = None,
    flush_interval_s: float = FLUSH_INTERVAL_S,
    overrides: Mapping[str, object] | None = None,
) -> ChatSession:
    """Resume ``conversation_id``, or start a new conversation, with the configured memory.

    ``strategy`` (else ``config.memory_strategy`` for a new conversation) is validated
    first; for an existing conversation it replaces the stored one. The turns sample with
    the conversation's own settings (``/set``) over the configured ones, and with
    ``overrides`` (this call's explicit options, e.g. ``ask -o``) over both.
    """
    spec = str(StrategySpec.parse(strategy or config.memory_strategy))
    sampling = load_settings(store, conversation_id).merged(
        ConversationSettings.from_mapping(overrides or {})
    )
    options = generation_options(config, settings=sampling)
    settings: dict[str, Any] = {
        "options": options,
        "reply_reserve": min(options.max_tokens or config.max_tokens, backend.context_length // 2),
        "summary_max_tokens": config.memory_summary_tokens,
        "recall_limit": config.memory_recall_facts,
        "adapter": config.adapter,
        "flush_interval_s": flush_interval_s,
    }
    if conversation_id is None:
        return ChatSession.create(
            store, backend, strategy=spec, system_prompt=config.system_prompt, **settings
        )
    session = ChatSession(store, backend, conversation_id, **settings)
    if strategy:
        session.set_strategy(spec)
    return session
