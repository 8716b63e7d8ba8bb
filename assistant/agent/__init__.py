"""The ReAct agent: a bounded, grammar-constrained tool-using loop over a Backend."""

from assistant.agent.events import (
    AgentEvent,
    AgentResult,
    AgentStep,
    FinalToken,
    Observed,
    StepFailed,
    StepStarted,
    ToolCalled,
)
from assistant.agent.loop import Approve, ReActAgent, call_tool, is_risky, mark_risky
from assistant.agent.steps import Action, Final, StepParseError, parse_step, step_grammar

__all__ = [
    "Action",
    "AgentEvent",
    "AgentResult",
    "AgentStep",
    "Approve",
    "Final",
    "FinalToken",
    "Observed",
    "ReActAgent",
    "StepFailed",
    "StepParseError",
    "StepStarted",
    "ToolCalled",
    "call_tool",
    "is_risky",
    "mark_risky",
    "parse_step",
    "step_grammar",
]
