"""Which conversation is shown and in which mode, and the sidebar's list of conversations.

The chat screen has one :class:`Conversations`. It reads and writes conversations in the
memory store and shows them in the screen's widgets. A conversation's mode is stored with
it: opening one answers in its mode, and a new one starts in chat mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tui.live import LiveReply

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore
    from assistant.services import Services
    from tui.widgets.chat_widgets import ChatWidgets


class ConversationsHost(Protocol):
    """What showing conversations needs of the chat screen."""

    ready: bool  # the model is loaded
    sub_title: str | None  # shown in the header

    @property
    def live(self) -> LiveReply | None:
        """The reply being written, if any (perhaps in another conversation)."""

    @property
    def store(self) -> MemoryStore | None:
        """The memory store; None while it is opening."""

    def update_budget(self) -> None:
        """Re-count the context budget of the shown conversation."""


class Conversations:
    """The shown conversation (``current``; None: a new one, not stored yet) and its mode."""

    def __init__(self, host: ConversationsHost, services: Services, widgets: ChatWidgets) -> None:
        self.host = host
        self.services = services
        self.widgets = widgets
        self.current: str | None = None
        self.mode = "chat"  # "chat", "documents" or "agent"
        self.query = ""  # the sidebar's search

    def refresh(self) -> None:
        """Fill the sidebar from the store, filtered by its search box."""
        store = self.host.store
        if store is None:
            return
        conversations = store.conversations()
        query = self.query.strip()
        if query:
            hits = {h.conversation_id for h in store.search_messages(query, 50)}
            conversations = [
                c for c in conversations if query.lower() in c.title.lower() or c.id in hits
            ]
        live, sidebar = self.host.live, self.widgets.sidebar
        sidebar.live = live.conversation_id if live else None
        sidebar.conversations = conversations
        sidebar.current = self.current

    def show(self, conversation_id: str | None) -> None:
        """Show a stored conversation in its mode (None: a new one, in chat mode). A reply
        still being written elsewhere keeps going and is shown again on coming back."""
        live, store = self.host.live, self.host.store
        if live is not None:
            live.view = None
            for step in live.steps:
                step.view = None
        self.current = conversation_id
        title, mode, messages = "", "chat", []
        if conversation_id is not None and store is not None:
            conversation = store.conversation(conversation_id)
            title, mode = conversation.title, conversation.mode
            messages = store.messages(conversation_id)
        here = live if live is not None and live.conversation_id == conversation_id else None
        self.widgets.transcript.show(messages, here)
        self.host.sub_title = " ".join(title.split())
        self.mode = mode
        self._show_mode()
        self.widgets.sidebar.current = conversation_id
        self.host.update_budget()

    def ensure(self) -> str:
        """The shown conversation's id, storing it (in the current mode) if it is new."""
        if self.current is not None:
            return self.current
        from assistant.memory.strategies import StrategySpec

        store, config = self.host.store, self.services.config
        assert store is not None
        conversation = store.create_conversation(
            strategy=str(StrategySpec.parse(config.memory_strategy)),
            system_prompt=config.system_prompt,
            model=self.services.backend.model_name if self.host.ready else config.model,
            adapter=config.adapter,
            mode=self.mode,
        )
        self.current = conversation.id
        self.refresh()
        return conversation.id

    def set_mode(self, mode: str) -> None:
        """Answer in ``mode`` from now on: stored with the conversation (with a new one,
        once it is stored)."""
        self.mode = mode
        store = self.host.store
        if self.current is not None and store is not None:
            store.update_conversation(self.current, mode=mode)
        self._show_mode()

    def _show_mode(self) -> None:
        self.widgets.status.mode = self.mode
        self.widgets.sources.display = self.mode == "documents"

    def retitled(self, conversation_id: str, title: str) -> None:
        """A conversation was renamed: show its title if it is the one shown."""
        if conversation_id == self.current:
            self.host.sub_title = " ".join(title.split())
