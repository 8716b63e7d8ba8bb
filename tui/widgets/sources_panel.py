"""The sources panel: numbered citations of the last answer; the chosen chunk below."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:  # the rag package is imported lazily, in workers
    from assistant.rag.index import Hit


class SourcesPanel(Vertical):
    """The app sets ``hits`` (numbered from 1) and ``cited``; Enter on one posts Open."""

    DEFAULT_CSS = """
    SourcesPanel { width: 36%; max-width: 60; min-width: 20; border-left: solid $panel; }
    SourcesPanel OptionList { height: auto; max-height: 12; }
    SourcesPanel #chunk-scroll { height: 1fr; }
    """

    hits: reactive[list[Hit]] = reactive(list, always_update=True)
    cited: reactive[list[int]] = reactive(list)

    @dataclass
    class Open(Message):
        """Open this source in the editor or viewer."""

        hit: Hit

    def compose(self) -> ComposeResult:
        yield Label("Sources (Enter opens)", id="sources-title")
        yield OptionList(id="source-list")
        with VerticalScroll(id="chunk-scroll"):
            yield Static("", id="chunk", markup=False)

    def watch_hits(self) -> None:
        if not self.is_mounted:
            return
        options = self.query_one("#source-list", OptionList)
        options.clear_options()
        for n, hit in enumerate(self.hits, 1):
            mark = "*" if n in self.cited else " "
            heading = f" — {hit.heading}" if hit.heading else ""
            options.add_option(Option(f"[{n}]{mark} {hit.location()}{heading}", id=f"src-{n}"))
        self.query_one("#chunk", Static).update("")
        if self.hits:
            options.highlighted = 0

    def show(self, n: int) -> None:
        """Show the chunk of source ``n`` (1-based)."""
        hit = self.hits[n - 1]
        self.query_one("#chunk", Static).update(f"[{n}] {hit.location()}\n\n{hit.text}")

    @on(OptionList.OptionHighlighted, "#source-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index < len(self.hits):
            self.show(event.option_index + 1)

    @on(OptionList.OptionSelected, "#source-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self.hits):
            self.post_message(self.Open(self.hits[event.option_index]))
