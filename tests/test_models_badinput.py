"""Bad model files and chat templates: one clear line from the CLI, never a hang.

Each case runs the real command line in a child process with a timeout, so a template that
loops forever fails the test instead of stalling the suite. The looping templates are
embedded in copies of the real bundled model, so the weights load and only the template is
wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.chat_template import ChatTemplate, check_template
from assistant.errors import InvalidModelError
from tests.conftest import write_gguf
from tests.test_cli import assert_one_line_error

TIMEOUT_S = 90  # a load, a bounded render (2 s) and an answer of a few tokens take ~10 s

NESTED_LOOP = (  # 10**10 iterations, each writing 1000 characters
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'x' * 1000 }}"
    "{% endfor %}{% endfor %}"
)
SILENT_LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
SYNTAX_ERROR = "{% for m in messages %}{{ m.content }"
HUGE_POWER = "{{ 2 ** (10 ** 10) }}"  # llama-cpp-python's Jinja folds this while loading


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSISTANT_HOME": str(home), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def smol_with(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Copies of the bundled model with another chat template, made once per template."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    made: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("templates")

    def make(template: str) -> Path:
        if template not in made:
            out = folder / f"smol-{len(made)}.gguf"
            reader = gguf.GGUFReader(str(smol_path), "r")
            arch = str(reader.fields["general.architecture"].contents())
            writer = gguf.GGUFWriter(str(out), arch=arch, endianess=reader.endianess)
            value = MetadataDetails(gguf.GGUFValueType.STRING, template)
            copy_with_new_metadata(reader, writer, {"tokenizer.chat_template": value}, [])
            made[template] = out
        return made[template]

    return make


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        (NESTED_LOOP, "writes a prompt of more than"),
        (SILENT_LOOP, "did not finish within 2 s"),
        (SYNTAX_ERROR, "does not compile (line 1): unexpected '}'"),
        (HUGE_POWER, "a number too large"),
    ],
    ids=["nested-loop", "silent-loop", "syntax-error", "huge-power"],
)
def test_ask_with_a_bad_template_says_so_and_how_to_avoid_it(
    smol_with: Callable[[str], Path], home: Path, template: str, needle: str
) -> None:
    path = smol_with(template)
    start = time.monotonic()
    result = cli("ask", "--model", str(path), "--max-tokens", "4", "hi", home=home)
    assert_one_line_error(result, "chat template embedded in", str(path), needle)
    assert "--chat-format chatml" in result.stderr
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("template", [SYNTAX_ERROR, HUGE_POWER], ids=["syntax", "power"])
def test_chat_format_gets_round_a_broken_template(
    smol_with: Callable[[str], Path], home: Path, template: str
) -> None:
    path = smol_with(template)
    result = cli(
        "ask", "--model", str(path), "--chat-format", "chatml", "--json", "--max-tokens", "4",
        "--temperature", "0", "Say hi.", home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] >= 1


def test_models_add_refuses_a_looping_template_and_registers_nothing(
    smol_with: Callable[[str], Path], home: Path
) -> None:
    path = smol_with(SILENT_LOOP)
    result = cli("models", "add", str(path), "--name", "loopy", home=home)
    assert_one_line_error(result, str(path), "did not finish within 2 s", "--chat-format")
    listed = json.loads(cli("models", "list", "--json", home=home).stdout)
    assert [m["name"] for m in listed] == ["smollm2-135m"]
    added = cli("models", "add", str(path), "--name", "loopy", "--chat-format", "chatml", home=home)
    assert added.returncode == 0, added.stderr


def test_models_add_refuses_a_template_syntax_error(
    smol_with: Callable[[str], Path], home: Path
) -> None:
    path = smol_with(SYNTAX_ERROR)
    result = cli("models", "add", str(path), home=home)
    assert_one_line_error(result, str(path), "does not compile", "--chat-format chatml")


@pytest.mark.parametrize(
    ("arch", "needles"),
    [
        ("notarealarch", ("llama.cpp cannot load", "unknown model architecture: 'notarealarch'")),
        ("llama", ("llama.cpp cannot load", "key not found in model: llama.embedding_length")),
    ],
    ids=["unknown-architecture", "missing-keys-and-tensors"],
)
def test_models_add_refuses_what_llama_cpp_cannot_load(
    home: Path, tmp_path: Path, arch: str, needles: tuple[str, ...]
) -> None:
    path = write_gguf(tmp_path / f"{arch}.gguf", arch=arch, template="{{ messages }}")
    result = cli("models", "add", str(path), home=home)
    assert_one_line_error(result, str(path), "it is not added", *needles)
    assert not (home / "models.json").exists()


def test_models_add_refuses_a_file_with_a_missing_tensor(
    home: Path, tmp_path: Path, smol_path: Path
) -> None:
    import gguf
    from gguf.scripts.gguf_new_metadata import copy_with_new_metadata

    reader = gguf.GGUFReader(str(smol_path), "r")
    reader.tensors = [t for t in reader.tensors if t.name != "output_norm.weight"]
    out = tmp_path / "no-norm.gguf"
    writer = gguf.GGUFWriter(str(out), arch="llama", endianess=reader.endianess)
    copy_with_new_metadata(reader, writer, {}, [])
    result = cli("models", "add", str(out), home=home)
    assert_one_line_error(result, "llama.cpp cannot load", "output_norm.weight")


# -- the bounded renderer itself (no model, fast) ------------------------------------------

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{{ 'x' * 10000000000 }}", "repeats a value 10000000000 times"),
        ("{{ 'x'|center(1000000000) }}", "passes 1000000000 to the center filter"),
        ("{{ 'x'.ljust(1000000000) }}", "passes 1000000000 to ljust"),
        ("{{ '%0999999999d' % 1 }}", "field width of a million"),
        ("{{ '{:>999999999}'.format(1) }}", "field width of a million"),
        ("{{ 1|round(-1000000000000000000) }}", "to the round filter"),
        ("{% for i in range(10000000000) %}x{% endfor %}", "passes 10000000000 to range"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            "builds a value of more than",
        ),
        (
            "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}"
            "{{ d('x', 40) }}",
            "builds a value of more than",
        ),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses without end"),
        (SILENT_LOOP, "did not finish within 2 s"),
    ],
)
def test_bounded_renderer_refuses_quickly(template: str, needle: str) -> None:
    start = time.monotonic()
    with pytest.raises(InvalidModelError, match=r"embedded in m\.gguf") as caught:
        ChatTemplate(template, model="m.gguf")(messages=MESSAGES)
    assert needle in str(caught.value)
    assert time.monotonic() - start < 5


def test_bounded_renderer_matches_llama_cpp_python_on_the_real_template(smol_path: Path) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from assistant.gguf_info import read_gguf_info

    source = read_gguf_info(smol_path).chat_template or ""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi <b> & 'you'"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "2+2?"},
    ]
    ours = ChatTemplate(source, model="smol", eos_token="<|im_end|>", bos_token="")
    theirs = Jinja2ChatFormatter(template=source, eos_token="<|im_end|>", bos_token="")
    assert ours(messages=messages).prompt == theirs(messages=messages).prompt
    assert ours(messages=messages).stop == ["<|im_end|>"]


def test_a_template_that_refuses_the_sample_is_still_accepted() -> None:
    check_template("{{ raise_exception('system role not supported') }}", model="m.gguf")
    with pytest.raises(ValueError, match="system role not supported"):
        ChatTemplate("{{ raise_exception('system role not supported') }}", model="m")(
            messages=MESSAGES
        )


def test_the_renderer_puts_back_a_tracer_it_found() -> None:
    seen: list[str] = []

    def tracer(frame: object, event: str, arg: object) -> None:
        seen.append(event)

    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        ChatTemplate("{{ messages[0].content }}", model="m")(messages=MESSAGES)
        after = sys.gettrace()
    finally:
        sys.settrace(None)
    assert after is tracer
