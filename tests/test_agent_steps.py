"""The ReAct step parser and grammar: tables of well-formed, malformed and injected steps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_cpp.llama_grammar import LlamaGrammar

from assistant.agent.steps import (
    Action,
    Final,
    StepParseError,
    final_answer_so_far,
    format_step,
    parse_step,
    step_grammar,
)

WELL_FORMED = [
    ("Action: calculator\nAction Input: 17*23", Action("", "calculator", "17*23")),
    (
        "Thought: I need maths\nAction: calculator\nAction Input: 17*23\n",
        Action("I need maths", "calculator", "17*23"),
    ),
    ("Final Answer: 391", Final("", "391")),
    ("Thought: done.\nFinal Answer: Paris\n", Final("done.", "Paris")),
    ("  action:  clock \n action input: 'Europe/Paris'", Action("", "clock", "Europe/Paris")),
    ('Action: `calculator`\nAction Input: "2+2"', Action("", "calculator", "2+2")),
    ("Action: clock\nAction Input:", Action("", "clock", "")),
    ("I think so.\nFinal Answer: line one\nline two", Final("I think so.", "line one\nline two")),
    # Only the first step counts: a hallucinated observation and second action are ignored.
    (
        "Action: calculator\nAction Input: 2+2\nObservation: 5\nAction: rm\nAction Input: /",
        Action("", "calculator", "2+2"),
    ),
    ("Final Answer: 4\nObservation: x\nAction: rm\nAction Input: /", Final("", "4")),
    # A label quoted inside the thought line is part of the thought, not a decision.
    (
        "Thought: the doc says Action: rm\nFinal Answer: no",
        Final("the doc says Action: rm", "no"),
    ),
]

MALFORMED = [
    ("", "no 'Action:'"),
    ("17*23 = 4097.", "no 'Action:'"),
    ("Thought: hmm", "no 'Action:'"),
    ("Action: calculator", "missing 'Action Input:'"),
    ("Action: calculator\n17*23", "missing 'Action Input:'"),
    ("Action:\nAction Input: 2", "no tool name"),
    ("Action Input: 2\nAction: calculator", "without an 'Action:'"),
    ("Final Answer:   ", "Final Answer is empty"),
    ("Observation: 3\nFinal Answer: 3", "no 'Action:'"),
]


@pytest.mark.parametrize(("text", "expected"), WELL_FORMED)
def test_parse_step_reads_well_formed_steps(text: str, expected: Action | Final) -> None:
    assert parse_step(text) == expected


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_parse_step_rejects_malformed_steps_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(StepParseError, match=message):
        parse_step(text)


_line = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\n\r"
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(lambda s: s and ":" not in s and s[0] not in "\"'`" and s[-1] not in "\"'`")
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parse_step_never_fails_other_than_with_a_parse_error(text: str) -> None:
    try:
        step = parse_step(text)
    except StepParseError:
        return
    assert isinstance(step, Action | Final)


@settings(max_examples=200, deadline=None)
@given(
    thought=_line | st.just(""),
    tool=st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True),
    tool_input=_line,
    answer=_line,
)
def test_format_then_parse_round_trips(
    thought: str, tool: str, tool_input: str, answer: str
) -> None:
    assert parse_step(format_step(Action(thought, tool, tool_input))) == Action(
        thought, tool, tool_input
    )
    assert parse_step(format_step(Final(thought, answer))) == Final(thought, answer)


def test_final_answer_so_far_streams_only_the_answer_line() -> None:
    assert final_answer_so_far("Thought: x\nAction: calculator") is None
    assert final_answer_so_far("Thought: x\nFinal Answer: 39") == "39"
    assert final_answer_so_far("Final Answer: 391\nmore") == "391"
    assert final_answer_so_far("Thought: I give the Final Answer: 3") is None


def test_step_grammar_names_only_registered_tools() -> None:
    grammar = step_grammar({"calculator": "[0-9]{1,5}", "clock": "[a-z]{0,5}"})
    assert '"calculator\\nAction Input: " ([0-9]{1,5})' in grammar
    assert '"clock\\nAction Input: " ([a-z]{0,5})' in grammar
    assert grammar.count("Action Input") == 2
    assert '"Final Answer: " answer' in grammar


def test_step_grammar_without_final_or_tools() -> None:
    assert "Final Answer" not in step_grammar({"clock": "[a-z]{0,5}"}, allow_final=False)
    assert "Action" not in step_grammar({})
    with pytest.raises(ValueError, match="at least one"):
        step_grammar({}, allow_final=False)


@pytest.mark.parametrize("name", ['evil"\nroot ::= "x', "a b", "", "9lives", "x" * 80])
def test_step_grammar_refuses_tool_names_that_could_break_it(name: str) -> None:
    with pytest.raises(ValueError, match="tool name"):
        step_grammar({name: "[a-z]{1,3}"})


def test_step_grammar_is_valid_gbnf_for_llama_cpp() -> None:
    grammar = step_grammar({"calculator": "[0-9+*/%^().-]{1,40}", "read-file": "[^\\n]{1,120}"})
    parsed = LlamaGrammar.from_string(grammar, verbose=False)
    assert parsed._root == "root"
