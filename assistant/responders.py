"""Who writes a turn's reply: plain chat, documents with citations, or the agent with tools.

:class:`~assistant.memory.session.ChatSession` owns every turn: it commits the user's
message, recalls and stores facts, sets the title, plans the prompt inside the context with
the conversation's memory strategy, and stores the reply as it streams. A *responder* only
says what the prompt holds for its mode and writes the reply from the planned prompt.

The chat responder lives here; the documents responder in :mod:`assistant.rag.responder`
and the agent's in :mod:`assistant.agent.responder`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from assistant.backends.base import Backend, Done, Event, GenerationOptions, Timings, Usage

if TYPE_CHECKING:  # assistant.memory imports this module: a runtime import would be a cycle
    from assistant.memory.strategies import PromptPlan

MODES = ("chat", "documents", "agent")


@dataclass(frozen=True)
class Sources:
    """The documents a documents turn was given, and which of them its answer cites."""

    hits: list[Any]
    cited: list[int] = field(default_factory=list)
    attributed: list[int] = field(default_factory=list)
    found: bool = True

    def as_memory(self) -> list[dict[str, Any]]:
        """What is stored with the reply: each source's place, numbered from 1."""
        return [
            {"n": n, "location": hit.location(), "heading": hit.heading, "cited": n in self.cited}
            for n, hit in enumerate(self.hits, 1)
        ]


@dataclass(frozen=True)
class Turn:
    """What a responder is given: the question and the prompt planned inside the budget.

    ``plan.messages`` is ``[head, *history, user]`` where the head holds the system prompt
    and the running summary, and the user message is what :meth:`Responder.user_prompt`
    returned. ``room`` is how many tokens the context has left after the planned prompt
    (the reply reserve): a responder that adds to the prompt (agent observations) must
    stay within it.
    """

    question: str
    plan: PromptPlan
    options: GenerationOptions
    room: int


class Responder(Protocol):
    """One mode's way to answer a planned turn."""

    mode: str

    def system_prompt(self, conversation_prompt: str | None) -> str | None:
        """The system prompt this mode plans with (given the conversation's own)."""

    def user_prompt(self, question: str, shown: str) -> str:
        """What the new user message shows the model, given the user's words and what the
        conversation shows for them (with recalled facts); documents add their sources."""

    def overhead(self) -> int:
        """Prompt tokens the responder adds outside the plan (the agent's examples)."""

    def respond(self, turn: Turn) -> Iterator[Any]:
        """Yield the reply's events; Token/Done as a backend does, plus mode events."""


class ChatResponder:
    """Plain chat: the planned prompt goes to the backend as it is."""

    mode = "chat"

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def system_prompt(self, conversation_prompt: str | None) -> str | None:
        """The conversation's own system prompt."""
        return conversation_prompt

    def user_prompt(self, question: str, shown: str) -> str:
        """The message as the conversation shows it."""
        return shown

    def overhead(self) -> int:
        """Nothing outside the plan."""
        return 0

    def respond(self, turn: Turn) -> Iterator[Event]:
        """Stream the backend's reply to the planned prompt."""
        yield from self.backend.stream(turn.plan.messages, turn.options)


def fixed_reply(text: str) -> Iterator[Event]:
    """Events for a reply written without the model (e.g. "nothing found")."""
    from assistant.backends.base import Token

    yield Token(text)
    yield Done("stop", Usage(0, 0), Timings(0.0, 0.0, 0.0))
