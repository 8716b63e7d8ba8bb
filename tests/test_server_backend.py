"""The server backend against a real llama.cpp server (llama-cpp-python's) on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.backends.base import ChatMessage, Done, GenerationOptions, Token, collect
from assistant.backends.llama_local import LlamaCppBackend
from assistant.backends.openai_server import OpenAIServerBackend
from assistant.chat_model import AssistantChatModel
from assistant.errors import BackendUnavailableError
from tests.test_cli import assistant

Q: list[ChatMessage] = [{"role": "user", "content": "What is the capital of France?"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(smol_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "llama_cpp.server", "--model", str(smol_path)),
            *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"),
            *("--n_threads", "1", "--model_alias", "smol-server", "--verbose", "false"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"llama_cpp.server did not start: {err[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def chat(backend: OpenAIServerBackend, options: GenerationOptions) -> tuple[str, Done]:
    return collect(backend.stream(Q, options))


def test_chat_streams_through_the_server(server_url: str) -> None:
    backend = OpenAIServerBackend(server_url, temperature=0.0)
    assert backend.model_name == "smol-server"
    events = list(backend.stream(Q, GenerationOptions(max_tokens=40)))
    tokens = [e for e in events if isinstance(e, Token)]
    assert len(tokens) > 3  # streamed, not one block
    assert "".join(t.text for t in tokens).strip()
    done = events[-1]
    assert isinstance(done, Done)
    assert done.usage.completion_tokens >= len(tokens) - 1
    assert (done.finish_reason, done.usage.completion_tokens == 40) in (
        ("stop", False),
        ("length", True),
    )


def test_same_answer_as_in_process(server_url: str, smol: LlamaCppBackend) -> None:
    """Greedy decoding through the server matches the in-process backend token for token."""
    remote, _ = chat(
        OpenAIServerBackend(server_url), GenerationOptions(temperature=0.0, max_tokens=24)
    )
    local = "".join(
        e.text
        for e in smol.stream(Q, GenerationOptions(temperature=0.0, max_tokens=24))
        if isinstance(e, Token)
    )
    # The server's default repeat penalty differs; the first words must agree.
    assert remote.split()[:3] == local.split()[:3]


def test_token_count_uses_the_server_tokenizer(server_url: str, smol: LlamaCppBackend) -> None:
    backend = OpenAIServerBackend(server_url)
    text = "Tokenizers split text into pieces, and the counts must agree."
    assert backend.count_tokens(text) == smol.count_tokens(text)


def test_grammar_and_json_schema_through_the_server(server_url: str) -> None:
    backend = OpenAIServerBackend(server_url, temperature=0.0)
    text, _ = chat(backend, GenerationOptions(grammar='root ::= ("yes" | "no") "."'))
    assert text in ("yes.", "no.")
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "pattern": "^[A-Za-z]{1,15}$"}},
        "required": ["city"],
    }
    text, _ = chat(backend, GenerationOptions(json_schema=schema, max_tokens=40))
    assert set(json.loads(text)) == {"city"}


def test_langchain_model_over_the_server(server_url: str) -> None:
    # A grammar pins the words, so the answer shows the request really went through.
    grammar = 'root ::= "The capital is " ("Paris" | "Rome") "."'
    model = AssistantChatModel(backend=OpenAIServerBackend(server_url), temperature=0.0)
    reply = model.invoke("What is the capital of France?", grammar=grammar)
    assert reply.content in ("The capital is Paris.", "The capital is Rome.")
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 2


def test_cli_ask_with_server_backend(server_url: str, home: Path) -> None:
    result = assistant(
        "ask", "--backend", "server", "--server-url", server_url, "--json", "--temperature", "0",
        "--max-tokens", "40", "What is the capital of France?", home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    direct, _ = chat(
        OpenAIServerBackend(server_url), GenerationOptions(temperature=0.0, max_tokens=40)
    )
    assert data["answer"] and data["answer"] == direct.strip()  # the same server, greedy
    assert data["model"] == "smol-server"
    assert data["usage"]["prompt_tokens"] > 0


def test_unreachable_server_is_a_clear_error(home: Path) -> None:
    backend = OpenAIServerBackend(f"http://127.0.0.1:{free_port()}/v1", model="x")
    with pytest.raises(BackendUnavailableError, match="cannot reach the model server"):
        list(backend.stream(Q, GenerationOptions()))
    result = assistant(
        "ask", "--backend", "server", "--server-url", f"http://127.0.0.1:{free_port()}/v1", "hi",
        home=home,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("error: cannot reach the model server")
