"""Every model family llama.cpp runs, through the assistant: load, templates, stops, KV reuse.

The zoo (``tests/zoo.py``) has one tiny random-weight GGUF per family. Its replies are noise,
so these tests pin the format: what the embedded template renders, which token ends a turn,
how many prompt tokens are reused, what ``models add`` / ``models info`` report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.backends.base import Done, GenerationOptions, Token
from assistant.backends.llama_local import LlamaCppBackend
from assistant.chat_template import ChatTemplate
from assistant.cli import cli
from assistant.errors import AssistantError
from tests.zoo import FAMILIES, ZooModel

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Hi"}
REPLY = {"role": "assistant", "content": "Hello there"}
AGAIN = {"role": "user", "content": "Again"}

# What each family's template renders for [system, user] (gemma2: [user]), as the real
# templates do; the prompt ends with the text that opens the assistant's turn.
EXPECTED = {
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "mistral": "<s>[INST] Be brief.\n\nHi[/INST]",
    "qwen2": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    "<|im_start|>assistant\n",
    "qwen3": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    "<|im_start|>assistant\n",
    "gemma2": "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "gemma3": "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n",
    "phi3": "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n",
}


def first_turn(model: ZooModel) -> list[dict[str, str]]:
    return [SYSTEM, USER] if model.system else [USER]


@pytest.fixture(scope="module")
def backends(zoo: dict[str, ZooModel]) -> Iterator[dict[str, LlamaCppBackend]]:
    """One loaded backend per family (greedy), closed at the end of the module."""
    loaded = {
        family: LlamaCppBackend(model.path, name=f"zoo-{family}", n_ctx=512, n_threads=1)
        for family, model in zoo.items()
    }
    yield loaded
    for backend in loaded.values():
        backend.close()


def test_the_zoo_covers_at_least_five_architectures(zoo: dict[str, ZooModel]) -> None:
    assert tuple(zoo) == FAMILIES
    assert {m.arch for m in zoo.values()} == {"llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"}
    for model in zoo.values():
        assert model.path.stat().st_size < 16 * 1024 * 1024


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_loads_in_llama_cpp_and_generates(
    family: str, zoo: dict[str, ZooModel]
) -> None:
    from llama_cpp import Llama

    model = zoo[family]
    llm = Llama(model_path=str(model.path), n_ctx=256, n_threads=1, verbose=False)
    try:
        assert llm.metadata["general.architecture"] == model.arch
        assert llm.metadata["tokenizer.chat_template"] == model.template
        prompt = llm.tokenize(b"Hello world", add_bos=False, special=False)
        out = []
        for token in llm.generate(prompt, top_k=1, temp=0.0):
            out.append(int(token))
            if len(out) == 4:
                break
        assert len(out) == 4 and all(0 <= t < llm.n_vocab() for t in out)
    finally:
        llm.close()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_projects_template_renders_the_family_format(
    family: str, zoo: dict[str, ZooModel]
) -> None:
    model = zoo[family]
    template = ChatTemplate(
        model.template, model=family, eos_token=model.eos_token, bos_token=model.bos_token
    )
    prompt = template.render(first_turn(model))
    assert prompt == EXPECTED[family]
    assert prompt.endswith(model.generation_prompt)
    # In a longer conversation the assistant's turn is closed by the end-of-turn token.
    longer = template.render([*first_turn(model), REPLY, AGAIN])
    assert "Hello there" + model.end_of_turn in longer
    if family != "mistral":  # Mistral moves the system text to the last user turn
        assert longer.startswith(prompt.removesuffix(model.generation_prompt))


def test_gemma2_template_refuses_a_system_message_and_the_backend_says_so(
    backends: dict[str, LlamaCppBackend],
) -> None:
    with pytest.raises(AssistantError, match="rejected these messages: System role not supported"):
        backends["gemma2"].render_prompt([SYSTEM, USER])  # type: ignore[list-item]


@pytest.mark.parametrize("family", FAMILIES)
def test_markers_are_single_tokens_and_the_end_of_turn_ends_generation(
    family: str, zoo: dict[str, ZooModel], backends: dict[str, LlamaCppBackend]
) -> None:
    import llama_cpp

    model, backend = zoo[family], backends[family]
    llm = backend.llama
    tokens, stops = backend.render_prompt(first_turn(model))  # type: ignore[arg-type]
    expected = EXPECTED[family]
    if family == "phi3":  # llama.cpp strips the whitespace after a phi3 file's special tokens
        expected = expected.replace(">\n", ">")
    assert llm.detokenize(tokens, special=True).decode() == expected
    assert stops == [model.eos_token]  # the project's stop string is the file's EOS
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    for marker in model.stop_tokens:
        ids = llm.tokenize(marker.encode(), add_bos=False, special=True)
        assert len(ids) == 1, (marker, ids)
        assert llama_cpp.llama_vocab_is_eog(vocab, ids[0]), marker
    if model.bos_token:
        assert tokens[0] == llm.token_bos()


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _forcing(llm: Any, token: int, after: int) -> Any:
    """Wrap ``llm.generate`` so that after ``after`` free tokens only ``token`` can follow."""
    from llama_cpp import LogitsProcessorList

    original = type(llm).generate.__get__(llm)  # the unwrapped method
    seen = {"n": 0}

    def force(input_ids: Any, scores: Any) -> Any:
        seen["n"] += 1
        if seen["n"] > after:
            scores = np.full_like(scores, -np.inf)
            scores[token] = 0.0
        return scores

    def generate(*args: Any, **kwargs: Any) -> Any:
        return original(*args, logits_processor=LogitsProcessorList([force]), **kwargs)

    return generate


def _reply(backend: LlamaCppBackend, messages: list[dict[str, str]], **kw: Any) -> tuple[str, Done]:
    events = list(backend.stream(messages, GenerationOptions(temperature=0.0, **kw)))  # type: ignore[arg-type]
    done = events[-1]
    assert isinstance(done, Done)
    return "".join(e.text for e in events if isinstance(e, Token)), done


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_stops_at_the_familys_end_of_turn_token_and_not_at_other_markers(
    family: str, zoo: dict[str, ZooModel], backends: dict[str, LlamaCppBackend]
) -> None:
    model, backend = zoo[family], backends[family]
    llm = backend.llama
    end = llm.tokenize(model.end_of_turn.encode(), add_bos=False, special=True)[0]
    other = model.generation_prompt or "[INST]"  # a marker that must not end the turn
    other_id = llm.tokenize(other.encode(), add_bos=False, special=True)[0]
    original = llm.generate
    try:
        llm.generate = _forcing(llm, end, after=3)
        text, done = _reply(backend, first_turn(model), max_tokens=12)
        assert (done.finish_reason, done.usage.completion_tokens) == ("stop", 3)
        assert model.end_of_turn not in text
        llm.generate = _forcing(llm, other_id, after=3)
        _text, done = _reply(backend, first_turn(model), max_tokens=6)
        assert (done.finish_reason, done.usage.completion_tokens) == ("length", 6)
    finally:
        llm.generate = original


@pytest.mark.parametrize("family", FAMILIES)
def test_a_follow_up_reuses_the_kv_cache_of_the_shared_prefix(
    family: str, zoo: dict[str, ZooModel], backends: dict[str, LlamaCppBackend]
) -> None:
    model, backend = zoo[family], backends[family]
    backend.llama.reset()
    first = first_turn(model)
    _text, cold = _reply(backend, first, max_tokens=4)
    assert cold.usage.cached_tokens == 0
    follow = [*first, REPLY, AGAIN]
    _text, warm = _reply(backend, follow, max_tokens=4)
    first_ids = backend.render_prompt(first)[0]  # type: ignore[arg-type]
    follow_ids = backend.render_prompt(follow)[0]  # type: ignore[arg-type]
    shared = common_prefix(first_ids, follow_ids)
    if family != "mistral":  # append-only templates; Mistral moves the system text
        # (the opener's last token may merge with the reply's first characters: "\n\nHello")
        assert shared >= len(first_ids) - 1
    # Everything the two prompts share is reused; the follow-up evaluates only the rest.
    assert shared <= warm.usage.cached_tokens < warm.usage.prompt_tokens, (warm.usage, shared)
    other = [{"role": "user", "content": "Something else entirely"}]
    _text, unrelated = _reply(backend, other, max_tokens=2)
    other_ids = backend.render_prompt(other)[0]  # type: ignore[arg-type]
    assert unrelated.usage.cached_tokens == common_prefix(follow_ids, other_ids)


@pytest.mark.parametrize("family", FAMILIES)
def test_models_add_and_info_report_the_architecture(
    family: str, zoo: dict[str, ZooModel], home: Path
) -> None:
    model = zoo[family]
    runner = CliRunner()
    added = runner.invoke(cli, ["models", "add", str(model.path), "--name", f"zoo-{family}"])
    assert added.exit_code == 0, added.output
    assert added.output.startswith(f"added model zoo-{family}: {model.arch}, ")
    shown = runner.invoke(cli, ["models", "info", f"zoo-{family}", "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert (info["architecture"], info["kind"], info["chat_template"]) == (
        model.arch,
        "model",
        True,
    )
    assert (info["context_length"], info["quantization"]) == (2048, "F16")
