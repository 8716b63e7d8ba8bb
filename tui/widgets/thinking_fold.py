"""A reasoning model's ``<think>`` text, folded above its reply (collapsed until opened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Collapsible, Static

if TYPE_CHECKING:
    from textual.timer import Timer

    from tui.live import LiveReply

TITLE = "Thinking…"
# The reasoning of a reply being written is re-shown at this pace (it is folded: cheap).
REFRESH_S = 0.25


class ThinkingFold(Collapsible):
    """The reasoning of one reply; it follows ``live`` while that reply is written."""

    DEFAULT_CSS = """
    ThinkingFold { margin: 0 1 0 1; padding: 0; border: none; background: transparent; }
    ThinkingFold > Contents { padding: 0 0 0 2; }
    ThinkingFold .thinking-text { color: $text-muted; }
    """

    def __init__(self, text: str = "", *, live: LiveReply | None = None) -> None:
        self.body = Static(text, markup=False, classes="thinking-text")
        super().__init__(self.body, title=TITLE, collapsed=True, classes="thinking")
        self.text = text
        self.live = live
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        """Follow the live reply's reasoning as it grows."""
        if self.live is not None:
            self._timer = self.set_interval(REFRESH_S, self.refresh_text)
            self.refresh_text()

    def refresh_text(self) -> None:
        """Show the live reply's reasoning so far (when it changed)."""
        if self.live is not None:
            self.set_text("".join(self.live.thinking).strip())

    def set_text(self, text: str) -> None:
        """Show ``text`` as the reasoning."""
        if text != self.text:
            self.text = text
            self.body.update(text)

    def finish(self) -> None:
        """The reply ended: show its whole reasoning and stop following it."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.refresh_text()
        self.live = None
