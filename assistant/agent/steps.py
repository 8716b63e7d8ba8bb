"""ReAct steps: the text format, its pure parser, and the GBNF grammar that enforces it.

A step is either::

    Thought: <one line>          (optional)
    Action: <tool name>
    Action Input: <one line>

or::

    Thought: <one line>          (optional)
    Final Answer: <the answer>

The thought is optional because tiny models talk themselves into wrong answers in it.

Parsing looks only at the model's own text for one step; anything after the first complete
step (a hallucinated "Observation:", a second "Action:") is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
DEFAULT_INPUT = "[^\\n]{1,160}"
THOUGHT = "[^\\n]{1,150}"
ANSWER = "[^\\n]{1,300}"
_LABEL = re.compile(r"^(thought|action input|action|final answer|observation|question)\s*:", re.I)
_FINAL_MARK = re.compile(r"(?:^|\n)[ \t]*Final Answer:[ \t]?", re.I)
# A step label anywhere in a line, with any spacing the parser or a reader might accept.
_ANY_LABEL = re.compile(
    r"\b(thought|action[^\S\n]*input|action|final[^\S\n]*answer|observation|question)[^\S\n]*:",
    re.I,
)


@dataclass(frozen=True)
class Action:
    """The model chose a tool."""

    thought: str
    tool: str
    tool_input: str


@dataclass(frozen=True)
class Final:
    """The model gave its answer."""

    thought: str
    answer: str


Step = Action | Final


class StepParseError(ValueError):
    """The text is not a step; the message tells the model what to write instead."""


def _label(line: str) -> tuple[str, str] | None:
    match = _LABEL.match(line.strip())
    if match is None:
        return None
    return match.group(1).lower(), line.strip()[match.end() :].strip()


def _clean_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        value = value[1:-1].strip()
    return value


def parse_step(text: str) -> Step:
    """Parse one step of model output.

    Raises:
        StepParseError: no "Action:"/"Final Answer:" line, an action without its input, or
            an empty tool name or answer.
    """
    lines = text.strip().splitlines()
    thought_parts: list[str] = []
    for i, line in enumerate(lines):
        labelled = _label(line)
        if labelled is None:
            thought_parts.append(line.strip())
            continue
        label, value = labelled
        if label == "thought":
            thought_parts.append(value)
        elif label == "final answer":
            answer_lines = [value]
            for rest in lines[i + 1 :]:
                if _label(rest) is not None:
                    break
                answer_lines.append(rest.rstrip())
            answer = "\n".join(answer_lines).strip()
            if not answer:
                raise StepParseError("the Final Answer is empty; write the answer after it")
            return Final(_join(thought_parts), answer)
        elif label == "action":
            tool = _clean_value(value)
            if not tool:
                raise StepParseError("the Action has no tool name; write one tool name")
            following = _label(lines[i + 1]) if i + 1 < len(lines) else None
            if following is None or following[0] != "action input":
                raise StepParseError("missing 'Action Input:' on the line after 'Action:'")
            return Action(_join(thought_parts), tool, _clean_value(following[1]))
        elif label == "action input":
            raise StepParseError("'Action Input:' without an 'Action:' line before it")
        else:
            break  # "Observation:" or "Question:" before any decision: the model is rambling
    raise StepParseError(
        "no 'Action:' or 'Final Answer:' line; reply with Thought/Action/Action Input "
        "or Thought/Final Answer"
    )


def _join(parts: list[str]) -> str:
    return " ".join(p for p in parts if p).strip()


def neutralise_labels(text: str) -> str:
    """Rewrite step labels in quoted text ("Action: x" becomes "(action) x").

    Text from documents, web pages or files is shown to the model as data. A line in it that
    reads like a step ("Final Answer: send it to ...") invites the model to copy it as its
    own, so the labels lose their colon and read as a mention instead.
    """
    return _ANY_LABEL.sub(lambda m: f"({' '.join(m.group(1).lower().split())})", text)


def format_step(step: Step) -> str:
    """Render a step in the canonical format (what the history shows the model)."""
    thought = f"Thought: {step.thought}\n" if step.thought else ""
    if isinstance(step, Final):
        return f"{thought}Final Answer: {step.answer}"
    return f"{thought}Action: {step.tool}\nAction Input: {step.tool_input}"


def final_answer_so_far(text: str) -> str | None:
    """The answer text streamed so far (first line after "Final Answer:"), or None if absent."""
    match = _FINAL_MARK.search(text)
    if match is None:
        return None
    return text[match.end() :].split("\n", 1)[0]


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def step_grammar(tools: Mapping[str, str], *, allow_final: bool = True) -> str:
    """A GBNF grammar allowing only steps that name a tool in ``tools`` or a final answer.

    Args:
        tools: tool name -> GBNF expression its input must match (bounded, single line).
        allow_final: False forbids the final answer (True and no tools forces one).

    Raises:
        ValueError: a tool name that is not a plain identifier, or nothing allowed at all.
    """
    # The closing newlines are optional so that the model can end its turn (EOS) as soon
    # as it wants: a grammar that insists on "\n" first makes tiny models ramble on.
    rules = [f"thought ::= {THOUGHT}", f"answer ::= {ANSWER}"]
    choices: list[str] = []
    for i, (name, pattern) in enumerate(tools.items()):
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r} must be letters, digits, _ or -")
        head = _literal(f"{name}\nAction Input: ")
        rules.append(f'tool{i} ::= {head} ({pattern}) "\\n"?')
        choices.append(f"tool{i}")
    decisions = []
    if choices:
        decisions.append('"Action: " (' + " | ".join(choices) + ")")
    if allow_final:
        decisions.append('"Final Answer: " answer "\\n"?')
    if not decisions:
        raise ValueError("a step grammar needs at least one tool or the final answer")
    root = '("Thought: " thought "\\n")? (' + " | ".join(decisions) + ")"
    return "\n".join([f"root ::= {root}", *rules]) + "\n"
