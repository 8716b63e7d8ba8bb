"""A LangChain chat model over any :class:`~assistant.backends.base.Backend`.

``AssistantChatModel`` is a langchain-core ``BaseChatModel``: it streams
``AIMessageChunk``s, honours ``stop``, counts tokens with the model's own tokenizer and takes
constrained-output settings as call kwargs (``grammar=``, ``json_schema=``) or through
``with_structured_output``. The same class serves the in-process llama.cpp backend, an
OpenAI-compatible server and the scripted fake.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import (
    ChatMessage as LCChatMessage,
)
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict

from assistant.backends.base import Backend, ChatMessage, Done, GenerationOptions, Token

_OPTION_KEYS = (
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "grammar",
    "json_schema",
    "conversation_id",
)


def to_chat_message(message: BaseMessage) -> ChatMessage:
    """Convert a LangChain message to the backends' ``{"role", "content"}`` form."""
    if isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ToolMessage):
        role = "tool"
    elif isinstance(message, LCChatMessage):
        role = message.role
    else:
        raise ValueError(f"unsupported message type {type(message).__name__}")
    content = message.content if isinstance(message.content, str) else message.text
    return {"role": role, "content": content}


def from_chat_message(message: ChatMessage) -> BaseMessage:
    """Convert a ``{"role", "content"}`` message to the matching LangChain message."""
    role, content = message["role"], message["content"]
    if role == "system":
        return SystemMessage(content)
    if role == "user":
        return HumanMessage(content)
    if role == "assistant":
        return AIMessage(content)
    return LCChatMessage(content=content, role=role)


class AssistantChatModel(BaseChatModel):
    """LangChain chat model backed by an assistant backend.

    Example:
        >>> model = AssistantChatModel(backend=ScriptedBackend(["Paris."]))
        >>> model.invoke("Capital of France?").content
        'Paris.'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    conversation_id: str | None = None

    @property
    def _llm_type(self) -> str:
        return "assistant"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self._backend.model_name}

    @property
    def _backend(self) -> Backend:
        return self.backend  # type: ignore[no-any-return]

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> GenerationOptions:
        values: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "conversation_id": self.conversation_id,
        }
        unknown = set(kwargs) - set(_OPTION_KEYS)
        if unknown:
            raise TypeError(f"unknown generation options: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in kwargs.items() if v is not None})
        return GenerationOptions(stop=tuple(stop or ()), **values)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        options = self._options(stop, kwargs)
        wire = [to_chat_message(m) for m in messages]
        for event in self._backend.stream(wire, options):
            if isinstance(event, Token):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=event.text))
                if run_manager:
                    run_manager.on_llm_new_token(event.text, chunk=chunk)
                yield chunk
            elif isinstance(event, Done):
                yield ChatGenerationChunk(message=_final_chunk(event, self._backend.model_name))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        message = AIMessage(content="")
        if merged is not None:
            m = merged.message
            message = AIMessage(
                content=m.content,
                usage_metadata=getattr(m, "usage_metadata", None),
                response_metadata=m.response_metadata,
            )
        return ChatResult(generations=[ChatGeneration(message=message)])

    # -- tokens ----------------------------------------------------------------------

    def get_num_tokens(self, text: str) -> int:
        """Count tokens of ``text`` with the backend model's own tokenizer."""
        return self._backend.count_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Count the tokens of the prompt these messages render to (chat markup included)."""
        return self._backend.count_prompt_tokens([to_chat_message(m) for m in messages])

    # -- structured output -----------------------------------------------------------

    def with_structured_output(
        self,
        schema: dict[str, Any] | type[BaseModel],
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Return a runnable whose output is constrained to ``schema`` by a grammar.

        ``schema`` is a JSON schema dict (the result is a dict) or a pydantic model class
        (the result is an instance of it).
        """
        if include_raw:
            raise NotImplementedError("include_raw is not supported")
        parser: Any
        if isinstance(schema, dict):
            json_schema, parser = schema, JsonOutputParser()
        else:
            json_schema, parser = (
                schema.model_json_schema(),
                PydanticOutputParser(pydantic_object=schema),
            )
        json.dumps(json_schema)  # fail early on a schema that is not JSON
        chain: Runnable[LanguageModelInput, Any] = self.bind(json_schema=json_schema) | parser
        return chain


def _final_chunk(done: Done, model: str) -> AIMessageChunk:
    usage = done.usage
    return AIMessageChunk(
        content="",
        usage_metadata={
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "input_token_details": {"cache_read": usage.cached_tokens},
        },
        response_metadata={
            "finish_reason": done.finish_reason,
            "model_name": model,
            "ttft_s": done.timings.ttft_s,
            "total_s": done.timings.total_s,
            "tokens_per_s": done.timings.tokens_per_s,
        },
        chunk_position="last",
    )
