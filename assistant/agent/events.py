"""What the agent loop reports while it runs, for the app and for ``ask --agent --json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepStarted:
    """The model is about to write step ``index`` (1-based)."""

    index: int


@dataclass(frozen=True)
class ToolCalled:
    """The model chose ``tool`` with ``tool_input``."""

    index: int
    thought: str
    tool: str
    tool_input: str


@dataclass(frozen=True)
class Observed:
    """What the tool returned (or why it did not run); data, never instructions."""

    index: int
    tool: str
    text: str
    error: bool = False


@dataclass(frozen=True)
class StepFailed:
    """The model's text was not a step (only possible without a grammar)."""

    index: int
    raw: str
    message: str


@dataclass(frozen=True)
class FinalToken:
    """A piece of the final answer as it is generated."""

    text: str


@dataclass(frozen=True)
class AgentStep:
    """One completed step, as reported in ``steps``."""

    index: int
    thought: str
    tool: str | None = None
    tool_input: str | None = None
    observation: str | None = None
    error: bool = False
    raw: str = ""


@dataclass(frozen=True)
class AgentResult:
    """The end of a run. ``stop_reason``: answer, step_budget or repeated_call."""

    answer: str
    stop_reason: str
    steps: list[AgentStep] = field(default_factory=list)
    parse_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


AgentEvent = StepStarted | ToolCalled | Observed | StepFailed | FinalToken | AgentResult
