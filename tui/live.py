"""A reply being generated: shared by its worker thread and the UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.await_complete import AwaitComplete
    from textual.timer import Timer

    from assistant.backends.base import Done
    from assistant.memory.reply import FinalText
    from tui.budget import Budget
    from tui.widgets.agent_step import AgentStepView
    from tui.widgets.message import ChatMessageView
    from tui.widgets.thinking_fold import ThinkingFold


@dataclass
class StepRecord:
    """One agent step as seen so far."""

    index: int
    tool: str
    tool_input: str
    thought: str = ""
    observation: str | None = None
    error: bool = False
    view: AgentStepView | None = None


@dataclass
class LiveReply:
    """The worker appends to ``parts``/``steps``; the UI shows them when ``view`` is set.

    ``view`` is None while its conversation is not on screen: the reply goes on being
    generated and stored, and is shown again when the user switches back.
    """

    conversation_id: str
    prompt: str
    mode: str = "chat"
    model: str | None = None  # shown in the reply's label
    parts: list[str] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    # A reasoning model's <think> text so far, and the fold that shows it.
    thinking: list[str] = field(default_factory=list)
    fold: ThinkingFold | None = None
    view: ChatMessageView | None = None
    shown: int = 0  # how many parts the view shows
    timer: Timer | None = None
    # Render pacing (UI thread only): the fragment being rendered and when it started.
    rendering: AwaitComplete | None = None
    render_started: float = 0.0
    next_show: float = 0.0

    @property
    def text(self) -> str:
        """The reply so far."""
        return "".join(self.parts)


@dataclass
class TurnOutcome:
    """How a turn ended, gathered by its worker from the session's events."""

    done: Done | None = None
    final: FinalText | None = None
    error: str | None = None
    budget: Budget | None = None

    @property
    def stopped(self) -> bool:
        """Cut short without an error: stopped by the user (the partial reply is kept)."""
        finished = self.final is not None or (
            self.done is not None and self.done.finish_reason != "cancelled"
        )
        return self.error is None and not finished
