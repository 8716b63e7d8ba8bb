"""The context budget bar: the model's window split into coloured parts, with a legend."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.budget import Budget

COLOURS = {
    "system": "magenta",
    "memory": "yellow",
    "documents": "cyan",
    "history": "green",
    "reserve": "red",
}


class ContextBar(Static):
    """Shows a :class:`~tui.budget.Budget`; the app sets ``budget``."""

    DEFAULT_CSS = """
    ContextBar { height: 2; padding: 0 1; }
    """

    budget: reactive[Budget | None] = reactive(None)

    def render(self) -> Text:
        budget = self.budget
        if budget is None or budget.context <= 0:
            return Text("context: –", style="dim")
        width = max(10, self.size.width - 2)
        bar = Text()
        for name, tokens in budget.parts():
            cells = round(width * tokens / budget.context)
            if tokens and not cells:
                cells = 1
            bar.append("█" * cells, style=COLOURS[name])
        bar.append("░" * max(0, width - len(bar.plain)), style="dim")
        bar.truncate(width)
        legend = Text("\n")
        for name, tokens in budget.parts():
            legend.append("■ ", style=COLOURS[name])
            legend.append(f"{name} {tokens}  ")
        legend.append(f"free {budget.free} of {budget.context}", style="dim")
        return bar + legend
