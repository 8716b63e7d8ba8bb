"""The slash commands about the shown conversation: /train, /system, /memory, /export,
/rename and /delete (the sidebar's rename and delete keys use them too).

:class:`ConversationCommands` works through a :class:`ConversationHost`, the few things of
the chat screen it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.screen import Screen

from assistant.config import Config
from tui.live import LiveReply
from tui.screens.confirm import ConfirmScreen
from tui.screens.edit_text import EditTextScreen

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore

NONE_WORDS = ("none", "off", "-")
T = TypeVar("T")


class ConversationHost(Protocol):
    """What the conversation commands need of the chat screen."""

    @property
    def conversation_id(self) -> str | None:
        """The shown conversation (None: a new one, not stored yet)."""

    @property
    def live(self) -> LiveReply | None:
        """The reply being written, if any (perhaps in another conversation)."""

    @property
    def config(self) -> Config:
        """The settings."""

    @property
    def store(self) -> MemoryStore | None:
        """The memory store; None while it is opening."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a notification."""

    def ask(self, modal: Screen[T], callback: Callable[[T | None], None]) -> None:
        """Show a modal; ``callback`` gets what it dismisses with."""

    def add_note(self, markdown: str) -> object:
        """Show a note in the chat."""

    def ensure_conversation(self) -> str:
        """The shown conversation's id, storing it first if it is new."""

    def show_conversation(self, conversation_id: str | None) -> None:
        """Show a stored conversation (None: a new one)."""

    def set_title(self, conversation_id: str, title: str) -> None:
        """A conversation was renamed."""

    def refresh_conversations(self) -> None:
        """Re-list the conversations."""

    def update_budget(self) -> None:
        """Re-count the context budget."""


class ConversationCommands:
    """One method a command, named after it; each returns whether it was accepted."""

    def __init__(self, host: ConversationHost) -> None:
        self.host = host

    def _store(self) -> MemoryStore | None:
        store = self.host.store
        if store is None:
            self.host.notify("the memory database is still opening", severity="warning")
        return store

    def train(self, argument: str) -> bool:
        """Mark (or unmark) this conversation for `assistant train prepare --marked`."""
        store, cid = self._store(), self.host.conversation_id
        if store is None:
            return False
        if cid is None:
            self.host.notify("no conversation yet: say something first", severity="warning")
            return False
        marked = not store.conversation(cid).marked_for_training
        store.update_conversation(cid, marked_for_training=int(marked))
        self.host.notify(
            "marked for training: `assistant train prepare --marked` will use it"
            if marked
            else "no longer marked for training"
        )
        return True

    def system(self, argument: str) -> bool:
        """Set this conversation's system prompt (an editor when no text is given)."""
        store, cid = self._store(), self.host.conversation_id
        if store is None:
            return False
        if argument:
            self._save_system(store, argument)
            return True
        current = store.conversation(cid).system_prompt if cid else self.host.config.system_prompt

        def saved(value: str | None) -> None:
            if value is not None:
                self._save_system(store, value)

        self.host.ask(EditTextScreen("System prompt / persona", current or ""), saved)
        return True

    def _save_system(self, store: MemoryStore, text: str) -> None:
        cid = self.host.ensure_conversation()
        value = None if text.strip().lower() in NONE_WORDS or not text.strip() else text.strip()
        store.update_conversation(cid, system_prompt=value)
        self.host.notify("system prompt saved" if value else "system prompt removed")
        self.host.update_budget()

    def memory(self, argument: str) -> bool:
        """Show the memory of this conversation, or set its strategy."""
        store, host = self._store(), self.host
        if store is None:
            return False
        from assistant.errors import ConfigError
        from assistant.memory.strategies import StrategySpec

        if argument:
            try:
                spec = StrategySpec.parse(argument)
            except ConfigError as exc:
                host.notify(str(exc), severity="error", timeout=10, markup=False)
                return False
            store.update_conversation(host.ensure_conversation(), strategy=str(spec))
            host.notify(f"memory strategy: {spec}", markup=False)
            host.update_budget()
            return True
        lines = ["**Memory**", ""]
        if host.conversation_id:
            conversation = store.conversation(host.conversation_id)
            lines.append(f"- strategy: `{conversation.strategy}`")
            summary = store.latest_summary(host.conversation_id)
            lines.append(f"- summary: {summary.content if summary else '(none yet)'}")
        else:
            lines.append(f"- strategy: `{host.config.memory_strategy}` (new conversation)")
        lines += ["", "**Facts** (say “remember that …” to add one)", ""]
        lines += [f"- {f.content}" for f in store.facts()] or ["- (none)"]
        host.add_note("\n".join(lines))
        return True

    def export(self, argument: str) -> bool:
        """Save the conversation as Markdown under ``$ASSISTANT_HOME/exports``."""
        store, cid = self._store(), self.host.conversation_id
        if store is None or cid is None:
            self.host.notify("nothing to export yet", severity="warning")
            return False
        from assistant.memory.transfer import export_markdown

        home = self.host.config.home
        target = Path(argument).expanduser() if argument else home / "exports" / f"{cid}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(export_markdown(store, cid), encoding="utf-8")
        self.host.notify(f"saved {target}", markup=False)
        return True

    # -- renaming and deleting ---------------------------------------------------------

    def rename(self, argument: str) -> bool:
        """Rename the shown conversation."""
        if self.host.conversation_id is None:
            self.host.notify("this conversation has no messages yet", severity="warning")
            return False
        self.rename_conversation(self.host.conversation_id, argument)
        return True

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        """Set a title (asking for it when ``title`` is empty)."""
        store = self._store()
        if store is None:
            return

        def save(value: str | None) -> None:
            if value:
                store.update_conversation(conversation_id, title=value)
                self.host.set_title(conversation_id, value)
                self.host.refresh_conversations()

        if title:
            save(title)
            return
        self.host.ask(EditTextScreen("Title", store.conversation(conversation_id).title), save)

    def delete(self, argument: str) -> bool:
        """Delete the shown conversation after asking."""
        if self.host.conversation_id is None:
            self.host.notify("this conversation has no messages yet", severity="warning")
            return False
        self.delete_conversation(self.host.conversation_id)
        return True

    def delete_conversation(self, conversation_id: str) -> None:
        """Ask, then delete a conversation (not one whose reply is being written)."""
        store, host = self._store(), self.host
        if store is None:
            return
        if host.live is not None and host.live.conversation_id == conversation_id:
            host.notify("a reply is being written there; stop it first", severity="warning")
            return
        title = store.conversation(conversation_id).title or conversation_id

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            store.delete_conversation(conversation_id)
            if conversation_id == host.conversation_id:
                host.show_conversation(None)
            host.refresh_conversations()
            host.notify(f"deleted “{title}”", markup=False)

        question = f"Delete “{title}” and all its messages?"
        host.ask(ConfirmScreen(question, yes="Delete", no="Keep"), answered)
