"""The conversations sidebar: a search box over a list. Attributes down, messages up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, ListItem, ListView

if TYPE_CHECKING:  # importing the memory package at startup would load sqlite_utils
    from assistant.memory.records import Conversation


class ConversationItem(ListItem):
    """One row of the list, remembering its conversation id."""

    def __init__(self, conversation: Conversation, live: bool) -> None:
        title = " ".join(conversation.title.split()) or "(untitled)"  # one line, always
        super().__init__(Label(("● " if live else "") + title), classes=f"conv-{conversation.id}")
        self.conversation_id = conversation.id


class ConversationList(Vertical):
    """The app sets ``conversations``, ``current`` and ``live``; the list posts choices up."""

    DEFAULT_CSS = """
    ConversationList { width: 24%; max-width: 32; min-width: 16; border-right: solid $panel; }
    ConversationList Input { margin: 0; }
    ConversationList ListView { height: 1fr; }
    """
    BINDINGS = [
        Binding("delete", "delete", "Delete"),
        Binding("f2", "rename", "Rename"),
    ]

    conversations: reactive[list[Conversation]] = reactive(list, always_update=True)
    current: reactive[str | None] = reactive(None)
    live: reactive[str | None] = reactive(None)

    @dataclass
    class Selected(Message):
        """The user picked a conversation."""

        conversation_id: str

    @dataclass
    class SearchChanged(Message):
        """The search box changed."""

        query: str

    @dataclass
    class DeleteRequested(Message):
        """The user asked to delete the highlighted conversation."""

        conversation_id: str

    @dataclass
    class RenameRequested(Message):
        """The user asked to rename the highlighted conversation."""

        conversation_id: str

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search conversations", id="conv-search")
        yield ListView(id="conv-list")

    def watch_conversations(self) -> None:
        self._refill()

    def watch_live(self) -> None:
        self._refill()

    def watch_current(self) -> None:
        self._highlight()

    def _refill(self) -> None:
        if not self.is_mounted:
            return
        view = self.query_one("#conv-list", ListView)
        view.clear()
        view.extend(ConversationItem(c, c.id == self.live) for c in self.conversations)
        self.call_after_refresh(self._highlight)

    def _highlight(self) -> None:
        view = self.query_one("#conv-list", ListView)
        ids = [c.id for c in self.conversations]
        if self.current in ids:
            view.index = ids.index(self.current)

    def _highlighted_id(self) -> str | None:
        item = self.query_one("#conv-list", ListView).highlighted_child
        return item.conversation_id if isinstance(item, ConversationItem) else None

    @on(ListView.Selected, "#conv-list")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ConversationItem):
            self.post_message(self.Selected(event.item.conversation_id))

    @on(Input.Changed, "#conv-search")
    def _search(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.SearchChanged(event.value))

    def action_delete(self) -> None:
        """Ask the app to delete the highlighted conversation."""
        found = self._highlighted_id()
        if found:
            self.post_message(self.DeleteRequested(found))

    def action_rename(self) -> None:
        """Ask the app to rename the highlighted conversation."""
        found = self._highlighted_id()
        if found:
            self.post_message(self.RenameRequested(found))
