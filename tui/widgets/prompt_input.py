"""The prompt box: a TextArea where Enter sends, Ctrl+J (or Shift+Enter, in terminals that
report it) adds a line and Ctrl+U clears it. Its height is capped: a long paste scrolls
inside the box instead of pushing the chat off the screen."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    """Multi-line prompt with a recall of earlier prompts (Up on the first line)."""

    DEFAULT_CSS = """
    PromptInput { height: auto; max-height: 10; min-height: 3; }
    """

    @dataclass
    class Submitted(Message):
        """The user sent ``text`` (the box is not cleared: the app decides)."""

        prompt: PromptInput
        text: str

    def __init__(
        self,
        *,
        send_keys: tuple[str, ...] = ("enter",),
        newline_keys: tuple[str, ...] = ("shift+enter", "ctrl+j"),
        clear_keys: tuple[str, ...] = ("ctrl+u",),
        id: str | None = None,
    ) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            compact=True,
            placeholder="Ask anything · Enter sends · Ctrl+J: new line · Ctrl+U: clear · /help",
        )
        self.send_keys = send_keys
        self.newline_keys = newline_keys
        self.clear_keys = clear_keys
        self.past: list[str] = []
        self._recall_at: int | None = None

    def remember(self, text: str) -> None:
        """Add a sent prompt to the recall list."""
        if text and (not self.past or self.past[-1] != text):
            self.past.append(text)
        self._recall_at = None

    def clear_text(self) -> None:
        """Empty the box."""
        self.load_text("")
        self._recall_at = None

    def set_text(self, text: str) -> None:
        """Replace the text and put the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    def refused(self) -> None:
        """A command was refused: keep its text to fix, selected, so that typing replaces
        it (never glued to the next command) and Ctrl+U or Backspace clears it."""
        self.select_all()
        self.focus()

    async def _on_key(self, event: events.Key) -> None:
        if event.key in self.send_keys:
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key in self.newline_keys:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key in self.clear_keys:
            event.stop()
            event.prevent_default()
            self.clear_text()
            return
        await super()._on_key(event)

    def action_cursor_up(self, select: bool = False) -> None:
        """Up on the first line recalls the previous prompt; otherwise moves the cursor."""
        if select or not self.cursor_at_first_line or not self.past:
            super().action_cursor_up(select)
            return
        at = len(self.past) if self._recall_at is None else self._recall_at
        if at == 0:
            return
        self._recall_at = at - 1
        self.set_text(self.past[self._recall_at])

    def action_cursor_down(self, select: bool = False) -> None:
        """Down on the last line steps forward through recalled prompts."""
        if select or self._recall_at is None or not self.cursor_at_last_line:
            super().action_cursor_down(select)
            return
        self._recall_at += 1
        if self._recall_at >= len(self.past):
            self._recall_at = None
            self.load_text("")
        else:
            self.set_text(self.past[self._recall_at])
