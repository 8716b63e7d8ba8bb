"""One chat message, rendered as Markdown (code blocks highlighted), under its role."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from textual.await_complete import AwaitComplete
from textual.widgets import Markdown

# A reply the user stopped (Esc) or a killed process cut short: the store's word for it.
STOPPED = "\n\n*[interrupted]*"
ROLE_LABELS = {"user": "You", "assistant": "Assistant"}


def cut_marker(tokens: int | None) -> str:
    """The note under a reply that stopped at its token limit (finish reason "length")."""
    n = tokens or 0
    return f"\n\n*… cut at max_tokens ({n}); raise it with `/set max_tokens {max(2 * n, 64)}`*"


# A line that starts its own Markdown block (list item, heading, quote, table row).
_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|#{1,6}\s|>|\|)")


def role_label(role: str, model: str | None = None) -> str:
    """``You``, ``Assistant (model)``; nothing for notes."""
    label = ROLE_LABELS.get(role, "")
    return f"{label} ({model})" if label and model and role == "assistant" else label


def with_line_breaks(text: str) -> str:
    """Markdown that keeps each line break the user typed (outside code blocks, where
    Markdown would join the lines of a paragraph)."""
    lines = text.split("\n")
    fence = [line.lstrip().startswith(("```", "~~~")) for line in lines]
    block = [fence[i] or _BLOCK_START.match(line) is not None for i, line in enumerate(lines)]
    out, fenced = [], False
    for i, line in enumerate(lines):
        if fence[i]:
            fenced = not fenced
        # A break only inside a paragraph: not in code, not before a blank line or a fence.
        follows = i + 1 < len(lines) and lines[i + 1].strip() and not block[i + 1]
        inside = not fenced and not fence[i] and line.strip()
        out.append(line + "\\" if inside and follows else line)
    return "\n".join(out)


def _parser() -> MarkdownIt:
    """Textual's parser with HTML off: "<name>" in a quoted man page or "<div>" in a reply
    is text to show, not a tag to drop."""
    return MarkdownIt("gfm-like", {"html": False})


class ChatMessageView(Markdown):
    """A user, assistant or note message. Streaming replies grow by appended fragments."""

    DEFAULT_CSS = """
    ChatMessageView { margin: 0 1 1 1; padding: 0 1; }
    ChatMessageView.user, ChatMessageView.assistant {
        border-top: blank; border-title-align: left; border-title-color: $text-muted;
    }
    ChatMessageView.user { background: $boost; border-left: thick $accent; }
    ChatMessageView.assistant { border-left: thick $success; }
    ChatMessageView.note { border-left: thick $secondary; color: $text-muted; }
    ChatMessageView.error { border-left: thick $error; }
    ChatMessageView.stopped { border-left: thick $warning; }
    """

    def __init__(
        self,
        role: str,
        text: str = "",
        *,
        message_id: int | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(self._as_markdown(role, text), classes=role, parser_factory=_parser)
        self.role = role
        self.text = text
        self.message_id = message_id
        self.border_title = role_label(role, model)

    @staticmethod
    def _as_markdown(role: str, text: str) -> str:
        return with_line_breaks(text) if role == "user" else text

    def set_model(self, model: str | None) -> None:
        """Name the model that wrote this reply in its label."""
        self.border_title = role_label(self.role, model)

    def set_text(self, text: str) -> None:
        """Replace the shown text (a full re-render: used once, when a reply ends)."""
        self.text = text
        self.update(self._as_markdown(self.role, text))

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
        return self.update(self._as_markdown(self.role, text))
