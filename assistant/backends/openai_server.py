"""Backend over any OpenAI-compatible chat server (llama.cpp's server, vLLM, Ollama).

Streaming uses server-sent events on ``/chat/completions``. Constrained output is sent as a
GBNF ``grammar`` (JSON schemas are compiled to GBNF locally), which llama.cpp-based servers
honour, plus ``response_format`` with the schema for servers that take that instead.
Token counting asks the server's tokenizer (``/extras/tokenize`` of llama-cpp-python,
``/tokenize`` of llama.cpp) and falls back to an estimate of 4 characters per token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Sequence
from typing import Any

import httpx

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
from assistant.errors import BackendUnavailableError, ContextOverflowError

_PER_MESSAGE_OVERHEAD = 4


class OpenAIServerBackend:
    """Chat through an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        context_length: int | None = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        max_tokens: int = 512,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0), headers=headers)
        self._context_length = context_length
        self.temperature, self.top_p, self.max_tokens = temperature, top_p, max_tokens
        self._tokenize_route: str | None = None

    # -- discovery -------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"cannot reach the model server at {self.base_url} ({exc}); start it, or set "
                'backend = "local" / server_url in config.toml'
            ) from exc

    @property
    def model_name(self) -> str:
        """The served model's id (asked from ``/models`` when not configured)."""
        if self._model is None:
            response = self._request("GET", f"{self.base_url}/models")
            try:
                self._model = str(response.json()["data"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise BackendUnavailableError(
                    f"{self.base_url}/models did not list a model; set server_model in config.toml"
                ) from exc
        return self._model

    @property
    def context_length(self) -> int:
        """The context window: configured, else ``/props`` of llama.cpp, else 4096."""
        if self._context_length is None:
            self._context_length = 4096
            root = self.base_url.removesuffix("/v1")
            try:
                props = self._client.get(f"{root}/props").json()
                self._context_length = int(props["default_generation_settings"]["n_ctx"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass
        return self._context_length

    # -- tokens ----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Count tokens with the server's tokenizer when it exposes one; else estimate."""
        root = self.base_url.removesuffix("/v1")
        routes = (
            [self._tokenize_route]
            if self._tokenize_route
            else [f"{root}/extras/tokenize", f"{root}/tokenize"]
        )
        for route in routes:
            if route == "estimate":
                break
            payload = {"input": text, "content": text, "add_special": False}
            if self._model:
                payload["model"] = self._model
            try:
                response = self._client.post(route, json=payload)
                if response.status_code == 200:
                    tokens = response.json()["tokens"]
                    self._tokenize_route = route
                    return len(tokens)
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        self._tokenize_route = "estimate"
        return max(1, len(text) // 4)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Content tokens plus a small per-message allowance for the chat markup."""
        return sum(self.count_tokens(m["content"]) + _PER_MESSAGE_OVERHEAD for m in messages)

    # -- generation ------------------------------------------------------------------

    def _payload(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens or self.max_tokens,
            "temperature": self.temperature if options.temperature is None else options.temperature,
            "top_p": self.top_p if options.top_p is None else options.top_p,
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.top_k is not None:  # not OpenAI's, but llama.cpp, vLLM and Ollama take it
            payload["top_k"] = options.top_k
        if options.grammar is not None:
            payload["grammar"] = options.grammar
        elif options.json_schema is not None:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            payload["grammar"] = json_schema_to_gbnf(json.dumps(options.json_schema))
            payload["response_format"] = {"type": "json_object", "schema": options.json_schema}
        return payload

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        """Stream a reply from the server.

        Raises:
            BackendUnavailableError: the server is unreachable or answers with an error.
            ContextOverflowError: the server says the prompt exceeds its context.
        """
        payload = self._payload(messages, options)
        start = time.perf_counter()
        ttft, n_chunks, finish = 0.0, 0, "stop"
        usage: dict[str, Any] = {}
        url = f"{self.base_url}/chat/completions"
        try:
            with self._client.stream("POST", url, json=payload) as response:
                if response.status_code >= 400:
                    _raise_for_status(response, self.base_url)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        if text:
                            n_chunks += 1
                            ttft = ttft or time.perf_counter() - start
                            yield Token(text)
                        finish = choice.get("finish_reason") or finish
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BackendUnavailableError(
                f"cannot reach the model server at {self.base_url} ({exc}); start it, or set "
                'backend = "local" / server_url in config.toml'
            ) from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"the model server at {self.base_url} failed mid-reply ({exc}); "
                "check that it is running"
            ) from exc
        total = time.perf_counter() - start
        completion = int(usage.get("completion_tokens") or n_chunks)
        # Servers that send no usage when streaming (llama-cpp-python's) get a local count.
        prompt = int(usage.get("prompt_tokens") or 0) or self.count_prompt_tokens(messages)
        details = usage.get("prompt_tokens_details") or {}
        yield Done(
            finish_reason=finish,
            usage=Usage(prompt, completion, int(details.get("cached_tokens") or 0)),
            timings=Timings(ttft or total, total, throughput(completion, ttft or total, total)),
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def _raise_for_status(response: httpx.Response, base_url: str) -> None:
    response.read()
    text = response.text[:500]
    if "context" in text.lower() and ("exceed" in text.lower() or "too long" in text.lower()):
        raise ContextOverflowError(
            f"the server rejected the prompt as longer than its context: {text}; shorten it "
            "or start a new conversation"
        )
    raise BackendUnavailableError(
        f"the model server at {base_url} answered HTTP {response.status_code}: {text}"
    )
