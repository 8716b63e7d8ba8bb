"""The one narrow interface every backend implements: messages in, events out."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict


class ChatMessage(TypedDict):
    """An OpenAI-style chat message, the backends' wire format.

    Native tool calling adds ``tool_calls`` to an assistant message (OpenAI's shape, with
    ``arguments`` as a dict, as chat templates expect) and ``tool_call_id`` / ``name`` to a
    ``tool`` message; see :mod:`assistant.agent.native`.
    """

    role: str
    content: str
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


@dataclass(frozen=True)
class GenerationOptions:
    """Per-call settings. None means the backend's configured default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: Sequence[str] = ()
    seed: int | None = None
    # Constrained output: a GBNF grammar, or a JSON schema compiled to one.
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    # Tools (OpenAI function schemas) rendered into a chat template that supports them.
    tools: tuple[dict[str, Any], ...] | None = None
    # Key under which a local backend keeps this conversation's KV state when switching.
    conversation_id: str | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, from the model's own tokenizer."""

    prompt_tokens: int
    completion_tokens: int
    # Prompt tokens whose KV entries were reused rather than evaluated again.
    cached_tokens: int = 0


@dataclass(frozen=True)
class Timings:
    """Wall-clock figures of one call."""

    ttft_s: float
    total_s: float
    tokens_per_s: float


@dataclass(frozen=True)
class Token:
    """A piece of generated text."""

    text: str


@dataclass(frozen=True)
class Done:
    """The end of a call.

    ``extra`` holds what only some backends report. The local backend: ``"logprobs"`` and
    ``"entropies"``, one float per generated token (its log-probability and the entropy of
    the distribution it came from; :mod:`assistant.confidence` summarizes them). The
    documents responder adds ``"confidence"`` (0..1), ``"confidence_basis"`` and
    ``"answer_mode"``.
    """

    finish_reason: str  # "stop", "length" or "cancelled"
    usage: Usage
    timings: Timings
    extra: dict[str, Any] = field(default_factory=dict)


Event = Token | Done


class Backend(Protocol):
    """What the chat model, the agent and the app need from an inference engine."""

    @property
    def model_name(self) -> str:
        """A label for the model being served."""
        ...

    @property
    def context_length(self) -> int:
        """The context window in tokens."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        """Generate a reply: zero or more Token events, then exactly one Done."""
        ...

    def count_tokens(self, text: str) -> int:
        """Count the tokens of plain text with the model's tokenizer."""
        ...

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Count the tokens of the full prompt these messages render to."""
        ...


def throughput(completion_tokens: int, ttft_s: float, total_s: float) -> float:
    """Decode speed: tokens after the first over the time after the first."""
    if completion_tokens <= 1 or total_s <= ttft_s:
        return 0.0
    return (completion_tokens - 1) / (total_s - ttft_s)


def collect(
    events: Iterable[Event], on_token: Callable[[str], None] | None = None
) -> tuple[str, Done]:
    """Consume a backend stream: the whole reply text and its Done event.

    Raises:
        ValueError: the stream ended without a Done event.
    """
    parts: list[str] = []
    done: Done | None = None
    for event in events:
        if isinstance(event, Token):
            parts.append(event.text)
            if on_token is not None:
                on_token(event.text)
        else:
            done = event
    if done is None:
        raise ValueError("the backend stream ended without a Done event")
    return "".join(parts), done
