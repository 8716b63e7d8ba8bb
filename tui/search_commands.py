"""``/search QUERY``: one ranked list over chats, documents and remembered facts.

:class:`SearchCommands` works through a :class:`SearchHost`, the few things of the chat
screen it needs. The search runs in a thread worker (the document index may load the
embedding model) and shows its hits as a note: kind, where, and a snippet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from textual.notifications import SeverityLevel

from tui.workers import UiThread, failure

if TYPE_CHECKING:
    from assistant.search_all import Found
    from assistant.services import Services

K = 10


class SearchHost(Protocol):
    """What /search needs of the chat screen."""

    @property
    def services(self) -> Services:
        """The memory store and the document index live here."""

    @property
    def ui(self) -> UiThread:
        """Calls the UI thread from a worker."""

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

    def add_note(self, markdown: str) -> object:
        """Show a note in the chat."""

    def start(
        self, group: str, work: Callable[..., None], *args: Any, exclusive: bool = True
    ) -> None:
        """Run ``work(*args)`` in a thread worker."""


def found_markdown(query: str, found: list[Found]) -> str:
    """The note /search shows: one numbered line a hit, with its kind and provenance."""
    if not found:
        return f"No chats, documents or facts match **{_escape(query)}**."
    lines = [f"**Search: {_escape(query)}**", ""]
    for n, item in enumerate(found, 1):
        snippet = " ".join(item.text.split())
        snippet = snippet[:160] + ("…" if len(snippet) > 160 else "")
        lines.append(f"{n}. `{item.kind}` {_escape(item.where)}: {_escape(snippet)}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Keep Markdown from reading user text as markup."""
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


class SearchCommands:
    """``/search``: returns whether it was accepted (then the prompt is cleared)."""

    def __init__(self, host: SearchHost) -> None:
        self.host = host

    def search(self, argument: str) -> bool:
        """Search chats, documents and facts for ``argument``, in a worker."""
        query = argument.strip()
        if not query:
            self.host.notify("say what to look for: /search QUERY", severity="warning")
            return False
        self.host.start("search", self._search, query)
        return True

    def _search(self, query: str) -> None:
        from assistant.search_all import search_everything

        host = self.host
        try:
            found = search_everything(host.services, query, K)
        except Exception as exc:  # the index, the embedder, the database
            host.ui(host.notify, failure(exc), severity="error", timeout=10, markup=False)
            return
        host.ui(host.add_note, found_markdown(query, found))
