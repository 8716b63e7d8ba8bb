"""One chat message, rendered as Markdown (code blocks highlighted)."""

from __future__ import annotations

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown

STOPPED = "\n\n*[stopped]*"


class ChatMessageView(Markdown):
    """A user, assistant or note message. Streaming replies grow by appended fragments."""

    DEFAULT_CSS = """
    ChatMessageView { margin: 0 1 1 1; padding: 0 1; }
    ChatMessageView.user { background: $boost; border-left: thick $accent; }
    ChatMessageView.assistant { border-left: thick $success; }
    ChatMessageView.note { border-left: thick $secondary; color: $text-muted; }
    ChatMessageView.error { border-left: thick $error; }
    ChatMessageView.stopped { border-left: thick $warning; }
    """

    def __init__(self, role: str, text: str = "", *, message_id: int | None = None) -> None:
        super().__init__(text, classes=role)
        self.role = role
        self.text = text
        self.message_id = message_id

    def set_text(self, text: str) -> None:
        """Replace the shown text (a full re-render: used once, when a reply ends)."""
        self.text = text
        self.update(text)

    def finish_text(self, text: str) -> AwaitComplete:
        """Show the final text of a reply.

        Streaming appends re-parse from the start of the last Markdown block, so what is
        shown already equals a full parse of the streamed text: only the rest is rendered.
        A view whose text differs (a reply shown again after switching back) is rendered
        in full.
        """
        return self.stream_text(text)

    def stream_text(self, text: str) -> AwaitComplete:
        """Show a longer version of a streaming reply, appending only what is new."""
        if self.text and text.startswith(self.text):
            fragment = text[len(self.text) :]
            self.text = text
            return self.append(fragment)
        self.text = text
        return self.update(text)
