"""The status bar: model, state, tokens/s of the last reply, context used, and work going
on in the background (adapting search)."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    """One line of facts about the model and the last reply."""

    DEFAULT_CSS = """
    StatusBar { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    model = reactive("")
    state = reactive("loading model…")
    tokens_per_s: reactive[float | None] = reactive(None)
    used = reactive(0)
    context = reactive(0)
    mode = reactive("chat")
    background = reactive("")  # e.g. "adapting search: step 40/600"; "" when none

    def render(self) -> str:
        speed = f"{self.tokens_per_s:.1f} tok/s" if self.tokens_per_s is not None else "– tok/s"
        context = f"{self.used}/{self.context} tokens" if self.context else "context –"
        parts = [self.model or "no model", self.state, self.mode, speed, context, self.background]
        return " · ".join(p for p in parts if p)
