"""A scripted fake backend for tests and demos: replies are queued in advance."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Sequence

from assistant.backends.base import (
    ChatMessage,
    Done,
    Event,
    GenerationOptions,
    Timings,
    Token,
    Usage,
    throughput,
)
from assistant.errors import AssistantError


class ScriptedBackend:
    """Replays queued replies word by word; records every call it receives.

    A queued item may be an exception, which is raised when that call starts (fault
    injection). With nothing queued it echoes the last user message.
    """

    def __init__(
        self,
        replies: Sequence[str | Exception] = (),
        *,
        context_length: int = 4096,
        delay_s: float = 0.0,
        model_name: str = "scripted",
    ) -> None:
        self._replies: deque[str | Exception] = deque(replies)
        self._context_length = context_length
        self.delay_s = delay_s
        self._model_name = model_name
        self.calls: list[tuple[list[ChatMessage], GenerationOptions]] = []

    @property
    def model_name(self) -> str:
        """The fake model's label."""
        return self._model_name

    @property
    def context_length(self) -> int:
        """The pretend context window."""
        return self._context_length

    def enqueue(self, *replies: str | Exception) -> None:
        """Queue replies (or exceptions) for the next calls."""
        self._replies.extend(replies)

    def count_tokens(self, text: str) -> int:
        """One token per whitespace-separated word (deterministic for tests)."""
        return len(text.split())

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Words of every message plus 4 per message for the role markup."""
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        """Yield the next queued reply, split into word tokens, honouring stop and max_tokens."""
        self.calls.append((list(messages), options))
        prompt_tokens = self.count_prompt_tokens(messages)
        if prompt_tokens > self._context_length:
            raise AssistantError(
                f"prompt has {prompt_tokens} tokens but the context holds {self._context_length}"
            )
        reply = self._replies.popleft() if self._replies else _echo(messages)
        if isinstance(reply, Exception):
            raise reply
        for stop in options.stop:
            if stop and stop in reply:
                reply = reply[: reply.index(stop)]
        pieces = [w for w in reply.replace(" ", "\x00 ").split("\x00") if w]
        finish = "stop"
        if options.max_tokens is not None and len(pieces) > options.max_tokens:
            pieces, finish = pieces[: options.max_tokens], "length"
        start = time.perf_counter()
        ttft = 0.0
        for i, piece in enumerate(pieces):
            if self.delay_s:
                time.sleep(self.delay_s)
            if i == 0:
                ttft = time.perf_counter() - start
            yield Token(piece)
        total = time.perf_counter() - start
        yield Done(
            finish_reason=finish,
            usage=Usage(prompt_tokens, len(pieces)),
            timings=Timings(ttft, total, throughput(len(pieces), ttft, total)),
        )


def _echo(messages: Sequence[ChatMessage]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return f"You said: {users[-1]}" if users else "Hello."
