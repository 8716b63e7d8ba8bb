"""The LangChain chat model over the scripted fake and over the real model."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from assistant.backends.llama_local import LlamaCppBackend
from assistant.backends.scripted import ScriptedBackend
from assistant.chat_model import AssistantChatModel, from_chat_message, to_chat_message


def test_invoke_and_stream_with_scripted_backend() -> None:
    backend = ScriptedBackend(["Paris is the capital.", "one two three"])
    model = AssistantChatModel(backend=backend, conversation_id="c1", max_tokens=50)
    reply = model.invoke([SystemMessage("Be brief."), HumanMessage("Capital of France?")])
    assert reply.content == "Paris is the capital."
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 4
    assert reply.response_metadata["finish_reason"] == "stop"
    chunks = [c.content for c in model.stream("count")]
    assert "".join(str(c) for c in chunks) == "one two three"
    messages, options = backend.calls[0]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert options.conversation_id == "c1"
    assert options.max_tokens == 50


def test_stop_and_call_kwargs_reach_the_backend() -> None:
    backend = ScriptedBackend(["Thought: add\nObservation: 4"])
    model = AssistantChatModel(backend=backend)
    reply = model.invoke("go", stop=["\nObservation:"], grammar='root ::= "x"', seed=3)
    assert reply.content == "Thought: add"
    _, options = backend.calls[0]
    assert options.stop == ("\nObservation:",)
    assert options.grammar == 'root ::= "x"'
    assert options.seed == 3


def test_unknown_kwarg_is_rejected() -> None:
    with pytest.raises(TypeError, match="unknown generation options: temprature"):
        AssistantChatModel(backend=ScriptedBackend()).invoke("hi", temprature=0.1)


def test_backend_errors_propagate() -> None:
    model = AssistantChatModel(backend=ScriptedBackend([RuntimeError("disk on fire")]))
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.invoke("hi")


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (SystemMessage("s"), {"role": "system", "content": "s"}),
        (HumanMessage("u"), {"role": "user", "content": "u"}),
        (AIMessage("a"), {"role": "assistant", "content": "a"}),
        (ToolMessage("t", tool_call_id="1"), {"role": "tool", "content": "t", "tool_call_id": "1"}),
    ],
)
def test_message_conversion(message: object, wire: dict[str, str]) -> None:
    assert to_chat_message(message) == wire  # type: ignore[arg-type]
    if wire["role"] != "tool":
        back = from_chat_message(wire)  # type: ignore[arg-type]
        assert type(back) is type(message)
        assert back.content == wire["content"]


def test_real_model_streams_and_counts_tokens(smol: LlamaCppBackend) -> None:
    model = AssistantChatModel(backend=smol, temperature=0.0)
    chunks = list(model.stream("What is the capital of France?"))
    text = "".join(str(c.content) for c in chunks)
    assert text.strip()
    assert len(chunks) > 3  # streamed, not one block
    assert chunks[-1].usage_metadata is not None
    assert model.get_num_tokens("Hello world") == smol.count_tokens("Hello world")
    prompt = [HumanMessage("What is the capital of France?")]
    assert model.get_num_tokens_from_messages(prompt) == chunks[-1].usage_metadata["input_tokens"]


class Capital(BaseModel):
    city: str = Field(pattern=r"^[A-Za-z ]{1,20}$")
    country: str = Field(pattern=r"^[A-Za-z ]{1,20}$")


def test_structured_output_on_the_real_model(smol: LlamaCppBackend) -> None:
    model = AssistantChatModel(backend=smol, temperature=0.0, max_tokens=60)
    result = model.with_structured_output(Capital).invoke(
        "Give the capital of France and its country as JSON."
    )
    assert isinstance(result, Capital)
    assert result.city and result.country
