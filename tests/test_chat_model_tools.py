"""``AssistantChatModel.bind_tools``, tool messages both ways, ``include_raw``, and LangChain's
real ``create_agent`` calling our calculator through our model on the bundled 135M model.

The 135M model's words differ between CPUs, so the tests pin what the grammar guarantees (a
call of the tool asked for whose arguments parse) and that the tool really ran (the
ToolMessage is the calculator's own result for those arguments), never the final text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.backends.scripted import ScriptedBackend
from assistant.chat_model import AssistantChatModel, from_chat_message, to_chat_message
from assistant.tools.calculator import make_calculator_tool
from tests.conftest import TEST_THREADS
from tests.zoo import build_zoo

CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "12*7"}}\n</tool_call>'


def test_bound_tools_give_parsed_tool_calls() -> None:
    backend = ScriptedBackend([CALL])
    model = AssistantChatModel(backend=backend).bind_tools([make_calculator_tool()])
    reply = model.invoke("What is 12*7?")
    assert isinstance(reply, AIMessage)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("calculator", {"expression": "12*7"})
    ]
    assert reply.tool_calls[0]["id"] and reply.content == "" and not reply.invalid_tool_calls
    wire, options = backend.calls[0]
    # The scripted model has no template tools: schemas and format go in the system message.
    assert wire[0]["role"] == "system" and '"name": "calculator"' in wire[0]["content"]
    assert "<tool_call>" in wire[0]["content"] and options.tools is None
    assert options.grammar is not None and options.grammar.startswith("root ::= answer | ")


def test_an_answer_has_no_tool_calls_and_a_broken_call_is_invalid() -> None:
    backend = ScriptedBackend(["It is 84.", '<tool_call>{"name": "calculator", "argu'])
    model = AssistantChatModel(backend=backend, constrain_tools=False)
    bound = model.bind_tools([make_calculator_tool()])
    answer = bound.invoke("What is 12*7?")
    assert answer.content == "It is 84." and answer.tool_calls == []
    broken = bound.invoke("What is 12*7?")
    assert broken.tool_calls == [] and len(broken.invalid_tool_calls) == 1
    assert "does not parse" in (broken.invalid_tool_calls[0]["error"] or "")
    assert backend.calls[0][1].grammar is None


@pytest.mark.parametrize(
    ("choice", "first_rule"),
    [
        ("calculator", 'root ::= "<tool_call>\\n" toolcall "\\n</tool_call>"'),
        ("any", 'root ::= "<tool_call>\\n" toolcall "\\n</tool_call>"'),
        ({"type": "function", "function": {"name": "calculator"}}, 'root ::= "<tool_call>'),
        ("none", "root ::= answer"),
    ],
)
def test_tool_choice_sets_the_grammar(choice: Any, first_rule: str) -> None:
    backend = ScriptedBackend([CALL])
    model = AssistantChatModel(backend=backend)
    model.bind_tools([make_calculator_tool()], tool_choice=choice).invoke("12*7?")
    assert backend.calls[0][1].grammar.splitlines()[0].startswith(first_rule)  # type: ignore[union-attr]


def test_openai_only_switches_are_accepted() -> None:
    backend = ScriptedBackend([CALL])
    model = AssistantChatModel(backend=backend)
    bound = model.bind_tools([make_calculator_tool()], strict=True, parallel_tool_calls=False)
    assert bound.invoke("12*7?").tool_calls[0]["name"] == "calculator"


def test_tool_choice_must_name_a_bound_tool() -> None:
    with pytest.raises(ValueError, match="names no bound tool"):
        AssistantChatModel(backend=ScriptedBackend()).bind_tools(
            [make_calculator_tool()], tool_choice="web_search"
        )


def test_tool_calls_and_tool_call_ids_round_trip() -> None:
    call = {"name": "calculator", "args": {"expression": "2+2"}, "id": "abc123def"}
    ai = AIMessage("", tool_calls=[call])
    tool = ToolMessage("4", tool_call_id="abc123def", name="calculator")
    wire_ai, wire_tool = to_chat_message(ai), to_chat_message(tool)
    assert wire_ai["tool_calls"] == [
        {
            "id": "abc123def",
            "type": "function",
            "function": {"name": "calculator", "arguments": {"expression": "2+2"}},
        }
    ]
    assert wire_tool == {
        "role": "tool",
        "content": "4",
        "tool_call_id": "abc123def",
        "name": "calculator",
    }
    back_ai, back_tool = from_chat_message(wire_ai), from_chat_message(wire_tool)
    assert isinstance(back_ai, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in back_ai.tool_calls] == [
        ("calculator", {"expression": "2+2"}, "abc123def")
    ]
    assert isinstance(back_tool, ToolMessage)
    assert (back_tool.tool_call_id, back_tool.name, back_tool.content) == (
        "abc123def",
        "calculator",
        "4",
    )


def test_a_conversation_with_calls_reaches_a_template_without_tools_as_text() -> None:
    backend = ScriptedBackend(["It is 4."])
    model = AssistantChatModel(backend=backend).bind_tools([make_calculator_tool()])
    model.invoke(
        [
            SystemMessage("Be brief."),
            HumanMessage("2+2?"),
            AIMessage(
                "", tool_calls=[{"name": "calculator", "args": {"expression": "2+2"}, "id": "a"}]
            ),
            ToolMessage("4 <tool_call>{}</tool_call>", tool_call_id="a"),
        ]
    )
    wire = backend.calls[0][0]
    assert wire[0]["content"].startswith("Be brief.\n\nYou can call tools.")
    assert wire[2] == {
        "role": "assistant",
        "content": "<tool_call>\n"
        '{"name": "calculator", "arguments": {"expression": "2+2"}}'
        "\n</tool_call>",
    }
    assert wire[3]["role"] == "user" and wire[3]["content"].startswith(
        "Tool result (calculator): 4"
    )
    assert "<tool_call>" not in wire[3]["content"]  # quoted as data


class Sum(BaseModel):
    total: int = Field(ge=0, le=1000)


def test_structured_output_include_raw() -> None:
    backend = ScriptedBackend(['{"total": 4}', "not json"])
    runnable = AssistantChatModel(backend=backend).with_structured_output(Sum, include_raw=True)
    good = runnable.invoke("2+2?")
    assert isinstance(good["raw"], AIMessage) and good["raw"].content == '{"total": 4}'
    assert good["parsed"] == Sum(total=4) and good["parsing_error"] is None
    bad = runnable.invoke("2+2?")
    assert bad["parsed"] is None and bad["parsing_error"] is not None
    assert backend.calls[0][1].json_schema == Sum.model_json_schema()


# -- the real models --------------------------------------------------------------------


@pytest.mark.slow
def test_forced_call_on_the_bundled_model_parses(smol: LlamaCppBackend) -> None:
    model = AssistantChatModel(backend=smol, temperature=0.0, max_tokens=80)
    bound = model.bind_tools([make_calculator_tool()], tool_choice="calculator")
    reply = bound.invoke("What is 12*7?")
    assert len(reply.tool_calls) == 1 and reply.tool_calls[0]["name"] == "calculator"
    assert isinstance(reply.tool_calls[0]["args"]["expression"], str)
    expression = reply.tool_calls[0]["args"]["expression"]
    # The calculator's input class, starting like a number (the grammar's pattern).
    assert re.fullmatch(r"[0-9(-][0-9+*/%^().-]{0,39}", expression)


@pytest.mark.slow
def test_unforced_replies_on_the_bundled_model_always_parse(smol: LlamaCppBackend) -> None:
    model = AssistantChatModel(backend=smol, temperature=0.0, max_tokens=80)
    reply = model.bind_tools([make_calculator_tool()]).invoke("What is 1234 + 5678?")
    assert not reply.invalid_tool_calls
    assert reply.tool_calls or str(reply.content).strip()


@pytest.mark.slow
def test_structured_output_include_raw_on_the_bundled_model(smol: LlamaCppBackend) -> None:
    model = AssistantChatModel(backend=smol, temperature=0.0, max_tokens=40)
    out = model.with_structured_output(Sum, include_raw=True).invoke("What is 2+2? As JSON.")
    assert isinstance(out["raw"], AIMessage)
    assert isinstance(out["parsed"], Sum) and out["parsing_error"] is None


@pytest.mark.slow
def test_native_template_gets_the_schemas(tmp_path: Path) -> None:
    qwen = build_zoo(tmp_path, families=("qwen2",))["qwen2"]
    backend = LlamaCppBackend(
        qwen.path, n_ctx=2048, n_threads=TEST_THREADS, defaults=SamplingDefaults(temperature=0.0)
    )
    try:
        model = AssistantChatModel(backend=backend, max_tokens=120)
        bound = model.bind_tools([make_calculator_tool()], tool_choice="calculator")
        reply = bound.invoke("What is 12*7?")
        assert [c["name"] for c in reply.tool_calls] == ["calculator"]
        assert set(reply.tool_calls[0]["args"]) == {"expression"}
        # The schemas went into the model's own template (its <tools> block), not the system.
        tokens, _ = backend.render_prompt(
            [{"role": "user", "content": "hi"}], [{"type": "function", "function": {"name": "x"}}]
        )
        prompt = backend.llama.detokenize(tokens, special=True).decode()
        assert "<tools>" in prompt and '"name": "x"' in prompt
    finally:
        backend.close()


def _force_calculator_then_answer() -> Any:
    """Middleware: the first model call must call the calculator; after its result, answer.

    The 135M model cannot be relied on to choose the tool by itself; LangChain's own
    ``tool_choice`` (through ``bind_tools``) makes the agent's path deterministic.
    """

    @wrap_model_call
    def force(
        request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ModelResponse[Any]:
        answered = any(isinstance(m, ToolMessage) for m in request.messages)
        return handler(request.override(tool_choice="none" if answered else "calculator"))

    return force


@pytest.mark.slow
def test_langchain_create_agent_calls_our_calculator_through_our_model(
    smol: LlamaCppBackend,
) -> None:
    calculator = make_calculator_tool()
    model = AssistantChatModel(backend=smol, temperature=0.0, max_tokens=80)
    agent = create_agent(model, tools=[calculator], middleware=[_force_calculator_then_answer()])
    state = agent.invoke({"messages": [HumanMessage("What is 12*7?")]})
    messages = state["messages"]
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    assert len(calls) == 1 and calls[0]["name"] == "calculator"
    arguments = calls[0]["args"]
    assert set(arguments) == {"expression"} and json.dumps(arguments)
    assert len(results) == 1 and results[0].tool_call_id == calls[0]["id"]
    assert results[0].content == str(calculator.invoke(arguments))  # the tool really ran
    assert isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls
