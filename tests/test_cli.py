"""The command line, run as a real subprocess: answers, JSON output and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_gguf


def assistant(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSISTANT_HOME": str(home), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


GREEDY = ("--temperature", "0", "--threads", "1", "--max-tokens", "48")


def test_ask_streams_the_same_answer_that_json_reports(home: Path) -> None:
    """The words differ between CPUs; on one machine greedy decoding is repeatable."""
    question = "What is the capital of France?"
    streamed = assistant("ask", *GREEDY, question, home=home)
    assert streamed.returncode == 0, streamed.stderr
    data = json.loads(assistant("ask", "--json", *GREEDY, question, home=home).stdout)
    assert data["answer"] and streamed.stdout.strip() == data["answer"]
    assert data["finish_reason"] in ("stop", "length")


def test_ask_json_has_answer_model_usage_timings(home: Path) -> None:
    result = assistant(
        "ask", "--json", "--temperature", "0", "--max-tokens", "16", "Say hello.", home=home
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "smollm2-135m"
    assert data["answer"]
    assert data["usage"]["prompt_tokens"] > 10
    assert 0 < data["usage"]["completion_tokens"] <= 16
    assert data["timings"]["ttft_s"] > 0
    assert data["timings"]["tokens_per_s"] >= 0


def test_ask_reads_the_prompt_from_stdin(home: Path) -> None:
    question = "Name three colours of the rainbow."
    piped = assistant("ask", "--json", *GREEDY, "-", home=home, stdin=question)
    given = assistant("ask", "--json", *GREEDY, question, home=home)
    assert piped.returncode == 0, piped.stderr
    piped_data, given_data = json.loads(piped.stdout), json.loads(given.stdout)
    # The same question, so the same prompt and the same greedy answer.
    assert piped_data["usage"] == given_data["usage"]
    assert piped_data["answer"] == given_data["answer"] != ""


def test_empty_prompt(home: Path) -> None:
    assert_one_line_error(assistant("ask", "  ", home=home), "prompt is empty")


def test_missing_model_file(home: Path, tmp_path: Path) -> None:
    result = assistant("ask", "--model", str(tmp_path / "missing.gguf"), "hi", home=home)
    assert_one_line_error(result, "no file at", "missing.gguf")


def test_unknown_model_name(home: Path) -> None:
    result = assistant("ask", "--model", "gpt-17", "hi", home=home)
    assert_one_line_error(result, "no model named 'gpt-17'", "smollm2-135m")


def test_non_gguf_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_text("this is not a model")
    assert_one_line_error(
        assistant("ask", "--model", str(path), "hi", home=home), "not a GGUF file"
    )


def test_truncated_gguf(home: Path, tmp_path: Path, smol_path: Path) -> None:
    path = tmp_path / "half.gguf"
    path.write_bytes(smol_path.read_bytes()[: smol_path.stat().st_size // 2])
    assert_one_line_error(assistant("ask", "--model", str(path), "hi", home=home), "truncated")


def test_unsupported_architecture(home: Path, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "alien.gguf", arch="notarealarch", template="{{ x }}")
    result = assistant("ask", "--model", str(path), "hi", home=home)
    assert_one_line_error(result, "could not load", "'notarealarch'")


def test_gguf_without_template_asks_for_a_chat_format(home: Path, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "plain.gguf")
    result = assistant("ask", "--model", str(path), "hi", home=home)
    assert_one_line_error(result, "has no chat template", "--chat-format", "chatml")


def test_prompt_longer_than_the_context(home: Path) -> None:
    result = assistant("ask", "--n-ctx", "256", "word " * 400, home=home)
    assert_one_line_error(result, "context window holds 256")


def test_bad_config_value(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text("n_threads = 'many'\n")
    assert_one_line_error(assistant("ask", "hi", home=home), "n_threads", "must be int")


def test_models_add_list_info_remove(home: Path, smol_path: Path) -> None:
    # `models add` test-loads the model with llama.cpp, so it needs a runnable one.
    added = assistant("models", "add", str(smol_path), "--name", "tiny", "--json", home=home)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["info"]["architecture"] == "llama"
    listed = json.loads(assistant("models", "list", "--json", home=home).stdout)
    assert [m["name"] for m in listed] == ["smollm2-135m", "tiny"]
    info = json.loads(assistant("models", "info", "smollm2-135m", "--json", home=home).stdout)
    assert info["architecture"] == "llama"
    assert info["quantization"] == "Q4_1"
    assert info["parameters"] == 134_515_008
    assert info["context_length"] == 8192
    assert info["chat_template"] is True
    text = assistant("models", "info", "tiny", home=home).stdout
    assert "none (needs --chat-format)" not in text
    removed = assistant("models", "remove", "tiny", "--json", home=home)
    assert json.loads(removed.stdout)["name"] == "tiny"
    listed = json.loads(assistant("models", "list", "--json", home=home).stdout)
    assert [m["name"] for m in listed] == ["smollm2-135m"]


def test_models_remove_unknown(home: Path) -> None:
    assert_one_line_error(assistant("models", "remove", "nope", home=home), "no model named 'nope'")


@pytest.mark.parametrize("args", [["models", "add", "/nonexistent/x.gguf"]])
def test_models_add_missing_file(home: Path, args: list[str]) -> None:
    assert_one_line_error(assistant(*args, home=home), "no file at")
