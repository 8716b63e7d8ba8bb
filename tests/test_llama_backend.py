"""The in-process backend against the real bundled model."""

import json
import logging
import os
from pathlib import Path

import pytest

from assistant.backends.base import ChatMessage, Done, GenerationOptions, Token, collect
from assistant.backends.llama_local import LlamaCppBackend
from assistant.errors import AssistantError, ChatFormatRequiredError, ContextOverflowError

Q: list[ChatMessage] = [{"role": "user", "content": "What is the capital of France?"}]


def run(
    backend: LlamaCppBackend, messages: list[ChatMessage], **options: object
) -> tuple[str, Done]:
    return collect(backend.stream(messages, GenerationOptions(**options)))  # type: ignore[arg-type]


def test_streams_an_answer_with_usage_and_timings(smol: LlamaCppBackend) -> None:
    """What the model says differs between CPUs; what the backend reports about it does not."""
    events = list(smol.stream(Q, GenerationOptions(max_tokens=64)))
    tokens, done = [e for e in events if isinstance(e, Token)], events[-1]
    assert isinstance(done, Done) and len(tokens) > 1
    text = "".join(t.text for t in tokens)
    assert text.strip()
    # The model stops by itself or at max_tokens, and says which.
    assert (done.finish_reason, done.usage.completion_tokens == 64) in (
        ("stop", False),
        ("length", True),
    )
    # Each streamed piece holds at least one generated token (multi-byte characters wait).
    assert done.usage.completion_tokens >= len(tokens)
    assert done.usage.prompt_tokens == smol.count_prompt_tokens(Q)
    assert done.usage.completion_tokens >= 3
    assert done.timings.ttft_s <= done.timings.total_s


def test_prompt_uses_the_gguf_chat_template(smol: LlamaCppBackend) -> None:
    tokens, stops = smol.render_prompt(Q)
    text = smol.llama.detokenize(tokens, special=True).decode()
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert stops == ["<|im_end|>"]


def test_token_count_matches_the_model_tokenizer(smol: LlamaCppBackend) -> None:
    text = "Hello, world! Tokenizers split text into pieces."
    expected = len(smol.llama.tokenize(text.encode(), add_bos=False, special=False))
    assert smol.count_tokens(text) == expected
    assert 5 < expected < 20


def test_stop_sequence_cuts_the_reply(smol: LlamaCppBackend) -> None:
    messages: list[ChatMessage] = [
        {"role": "user", "content": "Count from 1 to 10, separated by commas."}
    ]
    full, _ = run(smol, messages, conversation_id="stop-a")
    # Stop at a word the greedy reply really contains (which one depends on the CPU).
    words = full.split()
    assert len(words) >= 3, full
    stop = words[len(words) // 2]
    cut, done = run(smol, messages, stop=[stop], conversation_id="stop-a")
    assert stop not in cut
    assert full.startswith(cut) and len(cut) < len(full)
    assert done.finish_reason == "stop"


def test_max_tokens_gives_length(smol: LlamaCppBackend) -> None:
    _, done = run(
        smol, [{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=5
    )
    assert done.usage.completion_tokens == 5
    assert done.finish_reason == "length"


def test_grammar_constrains_output(smol: LlamaCppBackend) -> None:
    grammar = 'root ::= ("yes" | "no") "."'
    text, _ = run(smol, [{"role": "user", "content": "Is the sky blue?"}], grammar=grammar)
    assert text in ("yes.", "no.")


def test_json_schema_gives_valid_json(smol: LlamaCppBackend) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "pattern": "^[A-Za-z ]{1,20}$"},
            "country": {"type": "string", "pattern": "^[A-Za-z ]{1,20}$"},
        },
        "required": ["city", "country"],
    }
    text, _ = run(
        smol,
        [{"role": "user", "content": "Give the capital of France as JSON with city and country."}],
        json_schema=schema,
        max_tokens=60,
    )
    data = json.loads(text)
    assert set(data) == {"city", "country"}


def test_invalid_grammar_is_a_clear_error(smol: LlamaCppBackend) -> None:
    with pytest.raises(AssistantError, match="invalid grammar"):
        run(smol, Q, grammar="root ::= (")


def test_context_overflow_is_refused_before_generation(smol: LlamaCppBackend) -> None:
    long = "word " * 3000
    with pytest.raises(ContextOverflowError, match="context window holds 2048"):
        run(smol, [{"role": "user", "content": long}])


def test_continuing_a_conversation_reuses_the_kv_cache(smol: LlamaCppBackend) -> None:
    history: list[ChatMessage] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a fruit."},
    ]
    reply, first = run(smol, history, conversation_id="kv-1")
    history += [
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "Another one."},
    ]
    _, second = run(smol, history, conversation_id="kv-1")
    previous = first.usage.prompt_tokens + first.usage.completion_tokens
    # Everything up to the end of the last reply is reused; only the new turn is evaluated.
    assert second.usage.cached_tokens >= previous - 3
    assert second.usage.prompt_tokens - second.usage.cached_tokens < 25


def test_switching_conversations_restores_kv_state(smol: LlamaCppBackend) -> None:
    conv_a: list[ChatMessage] = [
        {"role": "system", "content": "Conversation A. " + "Remember the number 17. " * 40},
        {"role": "user", "content": "Hi"},
    ]
    conv_b: list[ChatMessage] = [
        {"role": "system", "content": "Conversation B is different. " * 40},
        {"role": "user", "content": "Hello"},
    ]
    reply_a, first_a = run(smol, conv_a, conversation_id="sw-a")
    run(smol, conv_b, conversation_id="sw-b")
    conv_a += [{"role": "assistant", "content": reply_a}, {"role": "user", "content": "Bye"}]
    _, back = run(smol, conv_a, conversation_id="sw-a")
    assert first_a.usage.prompt_tokens > 300
    assert back.usage.cached_tokens >= first_a.usage.prompt_tokens


def test_without_conversation_ids_switching_re_evaluates(smol: LlamaCppBackend) -> None:
    """The control for the test above: no ids, no saved state, so the history is re-read."""
    conv_a: list[ChatMessage] = [
        {"role": "system", "content": "Alpha. " * 200},
        {"role": "user", "content": "Hi"},
    ]
    conv_b: list[ChatMessage] = [
        {"role": "system", "content": "Beta. " * 200},
        {"role": "user", "content": "Hi"},
    ]
    run(smol, conv_a, max_tokens=2)
    run(smol, conv_b, max_tokens=2)
    _, back = run(smol, conv_a, max_tokens=2)
    assert back.usage.cached_tokens < 10


def test_model_without_template_needs_chat_format(smol_without_template: Path) -> None:
    with pytest.raises(ChatFormatRequiredError, match="has no chat template"):
        LlamaCppBackend(smol_without_template)
    backend = LlamaCppBackend(smol_without_template, chat_format="chatml", n_ctx=512, n_threads=1)
    try:
        tokens, _ = backend.render_prompt(Q)
        prompt = backend.llama.detokenize(tokens, special=True).decode()
        assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")
        text, done = run(backend, Q, temperature=0.0, max_tokens=20)
        assert text.strip() and done.usage.prompt_tokens == len(tokens)
    finally:
        backend.close()


def test_loading_leaves_the_terminal_alone(
    smol_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full-screen app draws while the model loads: fds 1 and 2 must never move.

    ``Llama(verbose=False)`` points them at /dev/null during the load; the backend loads
    quietly another way, and llama.cpp's log lines go to the ``assistant.llama_cpp`` logger.
    """
    import threading

    seen: set[str] = set()
    loading = threading.Event()

    def watch() -> None:
        while loading.is_set():
            seen.update(os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2))

    backend = LlamaCppBackend(smol_path, n_ctx=512, n_threads=1)
    loading.set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with caplog.at_level(logging.DEBUG, logger="assistant.llama_cpp"):
            backend.load()
    finally:
        loading.clear()
        watcher.join()
        backend.close()
    assert os.devnull not in seen
    assert "llama_model_loader" in caplog.text  # the load log is kept, not lost
