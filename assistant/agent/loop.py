"""The ReAct loop: bounded, grammar-constrained, and safe against tools that fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Sequence

from langchain_core.tools import BaseTool

from assistant.agent import prompt
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
from assistant.agent.fit import fit_observation
from assistant.agent.route import Route, Router, direct_answer
from assistant.agent.steps import (
    DEFAULT_INPUT,
    Action,
    Final,
    Step,
    StepParseError,
    final_answer_so_far,
    format_step,
    parse_step,
    step_grammar,
)
from assistant.backends.base import Backend, ChatMessage, GenerationOptions, Token

Approve = Callable[[str, str], bool]
"""(tool name, tool input) -> whether the user lets a risky tool run."""


def is_risky(tool: BaseTool) -> bool:
    """Whether ``tool`` needs the user's approval before it runs."""
    return bool((tool.metadata or {}).get("risky"))


def mark_risky(tool: BaseTool) -> BaseTool:
    """Mark ``tool`` as needing approval; returns it for chaining."""
    tool.metadata = {**(tool.metadata or {}), "risky": True}
    return tool


def call_tool(tool: BaseTool, tool_input: str) -> tuple[str, bool]:
    """Run ``tool`` on one line of input; returns (observation, error). Never raises."""
    fields = list(tool.args)
    try:
        if not fields:
            args: dict[str, object] = {}
        elif len(fields) == 1:
            args = {fields[0]: tool_input}
        else:
            loaded = json.loads(tool_input)
            if not isinstance(loaded, dict):
                raise ValueError(f"{tool.name} takes a JSON object with {', '.join(fields)}")
            args = loaded
        text = str(tool.invoke(args))
    except Exception as exc:  # a tool is outside code: any failure becomes an observation
        return f"error: {tool.name} failed: {type(exc).__name__}: {exc}", True
    return text, text.startswith("error:")


class ReActAgent:
    """Thought → Action → Observation, repeated, then a final answer.

    Each step is generated under a grammar that admits only the registered tools' names or
    a final answer (``constrained=False`` drops it, for comparison). The loop stops after
    ``max_steps`` tool calls or at the first repeat of an identical call, and then asks the
    model for a final answer under a grammar that admits nothing else. Each observation is
    fitted to what is left of the context after room for the next step (the lines that
    match the question first), so a run never overflows the context.

    With ``route`` (the default) the first step is decided before the loop by
    :class:`~assistant.agent.route.Router` (a detector, the nearest worked examples, or the
    model under a grammar of the tool names); the routed call runs as step 1 and the loop
    goes on from its observation. After a detected calculation or clock question, an answer
    that does not state the observation is replaced by it (``direct_answers``), and the
    answer is shown whole once checked instead of streamed.
    """

    def __init__(
        self,
        backend: Backend,
        tools: Sequence[BaseTool],
        *,
        max_steps: int = 5,
        constrained: bool = True,
        approve: Approve | None = None,
        max_tokens: int = 320,
        temperature: float = 0.0,
        observation_chars: int = 30_000,
        conversation_id: str | None = None,
        route: bool = True,
        direct_answers: bool = True,
    ) -> None:
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError(f"tool names must be unique: {names}")
        self.backend = backend
        self.tools = {t.name: t for t in tools}
        self.max_steps = max_steps
        self.constrained = constrained
        self.approve = approve
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.observation_chars = observation_chars
        self.conversation_id = conversation_id
        patterns = {t.name: (t.metadata or {}).get("gbnf_input", DEFAULT_INPUT) for t in tools}
        self.grammar = step_grammar(patterns) if constrained else None
        self.final_grammar = step_grammar({}) if constrained else None
        self.router = Router(backend, tools) if route else None
        self.direct_answers = direct_answers
        # The input of a routed tool that the question does not give: that tool only.
        self.input_grammars = {
            name: step_grammar({name: pattern}, allow_final=False) if constrained else None
            for name, pattern in patterns.items()
        }

    def ask(self, question: str, tool_choice: str | None = None) -> AgentResult:
        """Run to the end and return the result."""
        result = None
        for event in self.run(question, tool_choice=tool_choice):
            if isinstance(event, AgentResult):
                result = event
        assert result is not None
        return result

    def system_prompt(self) -> str:
        """The agent's instructions for its tools."""
        return prompt.system_prompt(list(self.tools.values()))

    def examples(self) -> list[ChatMessage]:
        """The worked examples that go between the instructions and the conversation."""
        return prompt.examples(list(self.tools.values()))

    def run(
        self,
        question: str,
        history: Sequence[ChatMessage] = (),
        system: str | None = None,
        route_question: str | None = None,
        tool_choice: str | None = None,
    ) -> Generator[AgentEvent, None, None]:
        """Yield events for one question; the last event is the AgentResult.

        ``system`` replaces the instructions (the turn owner adds the running summary);
        ``route_question`` is what routing reads when ``question`` carries more (the user's
        own words, without the recalled facts shown with them). ``tool_choice`` names the
        tool the first step must call (instead of routing); the model writes its input.
        """
        if tool_choice is not None and tool_choice not in self.tools:
            raise ValueError(f"tool_choice {tool_choice!r} is not one of {list(self.tools)}")
        messages: list[ChatMessage] = [
            {"role": "system", "content": system or self.system_prompt()},
            *self.examples(),
            *history,
            {"role": "user", "content": question},
        ]
        steps: list[AgentStep] = []
        seen: dict[tuple[str, str], str] = {}
        failures = 0
        calls = 0
        index = 0
        route: Route | None = None
        while True:
            index += 1
            yield StepStarted(index)
            first = None
            if index == 1 and tool_choice is not None:
                first = route = Route(tool_choice, None, "forced")
            elif index == 1 and self.router is not None:
                first = route = self.router.route(route_question or question, self.conversation_id)
            stream = self._streams(route)
            if first is not None and first.tool is not None and first.tool_input is not None:
                routed = Action("", first.tool, first.tool_input)
                step_now: Step | None = routed
                raw = format_step(routed)
            else:
                grammar = self.grammar
                if first is not None:
                    grammar = self.input_grammars.get(first.tool or "", self.final_grammar)
                raw = yield from self._generate(messages, grammar, stream)
                step_now = None
            try:
                step: Step = step_now or parse_step(raw)
            except StepParseError as exc:
                failures += 1
                yield StepFailed(index, raw, str(exc))
                steps.append(AgentStep(index, "", observation=str(exc), error=True, raw=raw))
                messages += _turn(raw, f"Invalid format: {exc}")
                if index > self.max_steps:
                    break
                continue
            if isinstance(step, Final):
                steps.append(AgentStep(index, step.thought, raw=raw))
                answer = yield from self._settle(step.answer, steps, route)
                yield AgentResult(answer, "answer", steps, failures)
                return
            yield ToolCalled(index, step.thought, step.tool, step.tool_input)
            key = (step.tool, " ".join(step.tool_input.lower().split()))
            if key in seen:
                note = prompt.REPEATED.format(tool=step.tool)
                steps.append(AgentStep(index, step.thought, step.tool, step.tool_input, note, True))
                yield Observed(index, step.tool, note, error=True)
                messages += _turn(format_step(step), seen[key], note)
                yield from self._finish(
                    messages, steps, failures, "repeated_call", seen[key], route
                )
                return
            text, error = self._run_tool(step)
            text = self._fit(messages, step, text, question)
            calls += 1
            seen[key] = text
            steps.append(
                AgentStep(index, step.thought, step.tool, step.tool_input, text, error, raw)
            )
            yield Observed(index, step.tool, text, error)
            if calls >= self.max_steps:
                messages += _turn(format_step(step), text)
                yield from self._finish(messages, steps, failures, "step_budget", text, route)
                return
            messages += _turn(format_step(step), text)
        yield from self._finish(messages, steps, failures, "step_budget", "", route)

    def _run_tool(self, step: Action) -> tuple[str, bool]:
        tool = self.tools.get(step.tool)
        if tool is None:
            known = ", ".join(self.tools)
            return f"error: there is no tool {step.tool!r}; the tools are: {known}", True
        if is_risky(tool) and not (self.approve and self.approve(tool.name, step.tool_input)):
            return f"the user did not allow running {tool.name}", True
        return call_tool(tool, step.tool_input)

    def _fit(self, messages: list[ChatMessage], step: Action, text: str, question: str) -> str:
        """``text`` fitted to the context left once the step is shown and a next one fits."""
        text = text[: self.observation_chars]  # bounds the counting below
        shown = [*messages, *_turn(format_step(step), "")]
        room = self.backend.context_length - self.backend.count_prompt_tokens(shown)
        room -= self.max_tokens + 8  # the next step, and the observation's own label
        if room >= self.backend.count_tokens(text):
            return text
        query = f"{question} {step.tool_input}"
        return fit_observation(text, query, room, self.backend.count_tokens)

    def _finish(
        self,
        messages: list[ChatMessage],
        steps: list[AgentStep],
        failures: int,
        reason: str,
        fallback: str,
        route: Route | None = None,
    ) -> Generator[AgentEvent, None, None]:
        """Ask for a final answer under a grammar that allows nothing else."""
        index = len(steps) + 1
        yield StepStarted(index)
        messages = [*messages[:-1], _with_note(messages[-1], prompt.FORCE_FINAL)]
        raw = yield from self._generate(messages, self.final_grammar, self._streams(route))
        try:
            step = parse_step(raw)
            answer = step.answer if isinstance(step, Final) else fallback
            thought = step.thought
        except StepParseError as exc:
            failures += 1
            yield StepFailed(index, raw, str(exc))
            answer, thought = (fallback or raw.strip()), ""
        steps.append(AgentStep(index, thought, raw=raw))
        answer = yield from self._settle(answer, steps, route)
        yield AgentResult(answer, reason, steps, failures)

    def _streams(self, route: Route | None) -> bool:
        """Whether the final answer streams (not when it is checked against a detected route)."""
        return not (self.direct_answers and route is not None and route.authoritative)

    def _settle(
        self, answer: str, steps: list[AgentStep], route: Route | None
    ) -> Generator[AgentEvent, None, str]:
        """The answer, checked against a detected route's observation; shown if not streamed."""
        if route is None or self._streams(route):
            return answer
        first = steps[0]
        if first.tool == route.tool and not first.error:
            answer = direct_answer(route, first.observation or "", answer)
        yield FinalToken(answer)
        return answer

    def _generate(
        self, messages: list[ChatMessage], grammar: str | None, stream: bool = True
    ) -> Generator[AgentEvent, None, str]:
        """Generate one step, streaming the final answer's tokens as they come."""
        options = GenerationOptions(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=("\nObservation:",),
            grammar=grammar,
            conversation_id=self.conversation_id,
        )
        text = ""
        shown = 0
        for event in self.backend.stream(messages, options):
            if not isinstance(event, Token):
                continue
            text += event.text
            answer = final_answer_so_far(text) if stream else None
            if answer is not None and len(answer) > shown:
                yield FinalToken(answer[shown:])
                shown = len(answer)
        return text


def _turn(step_text: str, observation: str, note: str | None = None) -> list[ChatMessage]:
    return [
        {"role": "assistant", "content": step_text},
        {"role": "user", "content": prompt.observation_message(observation, note)},
    ]


def _with_note(message: ChatMessage, note: str) -> ChatMessage:
    return {"role": message["role"], "content": f"{message['content']}\n{note}"}


__all__ = ["AgentResult", "Approve", "ReActAgent", "call_tool", "is_risky", "mark_risky"]
