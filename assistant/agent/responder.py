"""The agent as a responder: a ReAct run over the turn owner's planned, budgeted prompt.

The conversation's history reaches the agent through the memory strategy (only earlier
questions and final answers, never earlier observations), the running summary rides in its
system message, and each observation is fitted to the context the plan left.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.tools import BaseTool

from assistant.agent.events import AgentResult, FinalToken
from assistant.agent.loop import Approve
from assistant.agent.native import Agent, NativeToolAgent, make_agent
from assistant.backends.base import Backend, Token
from assistant.memory.reply import FinalText
from assistant.responders import Turn


class AgentResponder:
    """Answer with tools; the final answer streams as tokens, the steps are stored."""

    mode = "agent"

    def __init__(
        self,
        backend: Backend,
        tools: Sequence[BaseTool],
        *,
        max_steps: int = 5,
        approve: Approve | None = None,
        temperature: float = 0.0,
        route: bool = True,
    ) -> None:
        self.backend = backend
        # Greedy by default: tool choice and tool inputs should not depend on the dice.
        # Native tool calls where the model's template renders tools, else the ReAct loop.
        self.agent: Agent = make_agent(
            backend,
            tools,
            max_steps=max_steps,
            approve=approve,
            temperature=temperature,
            route=route,
        )
        self._overhead: int | None = None

    def system_prompt(self, conversation_prompt: str | None) -> str:
        """The agent's tool instructions (a persona would fight the step format)."""
        return self.agent.system_prompt()

    def user_prompt(self, question: str, shown: str) -> str:
        """The question as the conversation shows it (with recalled facts)."""
        return shown

    def overhead(self) -> int:
        """The worked examples (or the native tools' schemas), and room for one tool step
        and its observation."""
        if self._overhead is None:
            examples = self.agent.examples()
            shown = self.backend.count_prompt_tokens(examples) if examples else 0
            if isinstance(self.agent, NativeToolAgent):
                shown += self.agent.schema_tokens()
            self._overhead = shown + self.agent.max_tokens
        return self._overhead

    def respond(self, turn: Turn) -> Iterator[Any]:
        """Run the agent; yield its events, the answer's pieces as Tokens, then its text."""
        head, *history, user = turn.plan.messages
        system = head["content"] if head["role"] == "system" else None
        if system is None:
            history = [head, *history]
        cid = turn.options.conversation_id
        self.agent.conversation_id = f"{cid}:agent" if cid else None
        # Routing reads the user's own words: recalled facts in the shown text would trip
        # the detectors ("born in 1990" is not a question for the clock).
        events = self.agent.run(
            user["content"], history, system=system, route_question=turn.question
        )
        for event in events:
            if isinstance(event, FinalToken):
                yield Token(event.text)
            if isinstance(event, AgentResult):
                yield FinalText(event.answer, list(event.steps))
            yield event
