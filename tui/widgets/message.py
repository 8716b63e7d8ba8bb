"""One chat message, rendered as Markdown."""

from __future__ import annotations

from textual.widgets import Markdown


class ChatMessageView(Markdown):
    """A user or assistant message. Assistant replies are appended to while streaming."""

    DEFAULT_CSS = """
    ChatMessageView { margin: 0 1 1 1; padding: 0 1; }
    ChatMessageView.user { background: $boost; border-left: thick $accent; }
    ChatMessageView.assistant { border-left: thick $success; }
    ChatMessageView.error { border-left: thick $error; }
    """

    def __init__(self, role: str, text: str = "") -> None:
        super().__init__(text, classes=role)
        self.role = role
        self.text = text

    def set_text(self, text: str) -> None:
        """Replace the shown text."""
        self.text = text
        self.update(text)
