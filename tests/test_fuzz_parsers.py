"""The pure parsers under random input: only their own error classes, and always fast.

The ReAct step parser, the calculator and the GGUF header reader all read text or bytes that
come from outside (a model's output, a user's expression, a downloaded file). Whatever they
are given, they answer or raise their one documented error, quickly.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assistant.agent.steps import (
    Action,
    Final,
    StepParseError,
    format_step,
    neutralise_labels,
    parse_step,
)
from assistant.errors import InvalidModelError
from assistant.gguf_info import read_gguf_info
from assistant.tools.calculator import CalculatorError, calculator, evaluate
from tests.conftest import write_gguf

FAST_S = 1.0
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the ReAct step parser ---------------------------------------------------------------

_LABELS = ["Thought:", "Action:", "Action Input:", "Final Answer:", "Observation:", "Question:"]
_step_text = st.lists(
    st.sampled_from(_LABELS).flatmap(lambda label: st.text(max_size=20).map(label.__add__))
    | st.text(max_size=40),
    max_size=10,
).map("\n".join)


@FUZZ
@given(_step_text | st.text(max_size=300))
def test_parse_step_returns_a_step_or_raises_step_parse_error(text: str) -> None:
    start = time.monotonic()
    try:
        step = parse_step(text)
    except StepParseError as exc:
        assert str(exc)
    else:
        assert isinstance(step, Action | Final)
        if isinstance(step, Action):
            assert step.tool
        else:
            assert step.answer
    assert time.monotonic() - start < FAST_S


@FUZZ
@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_a_formatted_action_parses_back_when_it_has_one_line_each(tool: str, arg: str) -> None:
    tool, arg = " ".join(tool.split()), " ".join(arg.split())
    if not tool or tool[0] in "\"'`" or tool[-1] in "\"'`" or arg[:1] in "\"'`":
        return  # quoting characters are stripped on purpose
    step = parse_step(format_step(Action("", tool, arg)))
    assert step == Action("", tool, arg.strip())


def test_parse_step_is_linear_on_a_long_answer() -> None:
    text = "Final Answer: a\n" + "more answer\n" * 20_000
    start = time.monotonic()
    assert isinstance(parse_step(text), Final)
    assert time.monotonic() - start < FAST_S


@FUZZ
@given(_step_text | st.text(max_size=300))
def test_neutralised_text_has_no_step_label_left(text: str) -> None:
    quoted = neutralise_labels(text)
    for line in quoted.splitlines():
        with pytest.raises(StepParseError):
            parse_step(line)
    assert not re.search(r"\b(final\s*answer|action)\s*:", quoted, re.I), quoted


# -- the calculator ----------------------------------------------------------------------


def test_round_to_a_huge_number_of_digits_is_refused_at_once() -> None:
    # In a child process: before the fix this computed 10**(10**18) while holding the GIL,
    # which no in-process timeout can interrupt.
    code = (
        "from assistant.tools.calculator import calculator\nprint(calculator('round(1, -10**18)'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "error: round() takes between -100 and 100 digits"
    start = time.monotonic()
    with pytest.raises(CalculatorError, match=r"round\(\) takes between -100 and 100 digits"):
        evaluate("round(10**99, -10**18)")
    assert time.monotonic() - start < FAST_S


def test_a_tiny_power_is_computed_not_called_too_large() -> None:
    assert calculator("2**-1000") == "9.33263618503e-302"
    assert calculator("0.5**3") == "0.125"
    assert calculator("10**-400").startswith("error: the result is too close to zero")
    assert calculator("1e-200 * 1e-200").startswith("error: the result is too close to zero")
    assert calculator("0.5**-1000") == "error: the result is too large (more than 1e100)"


_ARITHMETIC = st.text(alphabet="0123456789+-*/%^()., epiqrtsxlogundfcamb", max_size=80)
_CALLS = st.builds(
    "{}({}, {})".format,
    st.sampled_from(["round", "log", "max", "min", "sqrt", "abs", "floor", "exp"]),
    st.sampled_from(["1", "-1", "2.5", "10**99", "-10**18", "1e308", "0", "pi"]),
    st.sampled_from(["1", "-10**18", "10**18", "-400", "0", "1e-300", "-1"]),
)
_POWERS = st.builds(
    "{}**{}".format,
    st.sampled_from(["2", "-2", "0.5", "10", "1e-5", "0", "1.0000001", "(-8)"]),
    st.sampled_from(["1000", "-1000", "-1", "0.5", "999", "-0.5", "(-1000)", "1e3"]),
)


@FUZZ
@given(_ARITHMETIC | _CALLS | _POWERS | st.text(max_size=200))
@example("round(1, -10**18)")
@example("round(10**99, -10**18)")
@example("2**-1000")
def test_calculator_answers_or_refuses_quickly(text: str) -> None:
    start = time.monotonic()
    try:
        value = evaluate(text)
    except CalculatorError as exc:
        assert str(exc)
    else:
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert abs(value) <= 10**100
    assert time.monotonic() - start < FAST_S


# -- the GGUF header reader --------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One file rewritten by every example (hypothesis runs examples one after another)."""
    yield tmp_path_factory.mktemp("fuzz") / "f.gguf"


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "v.gguf"
    return write_gguf(path, template="{{ messages[0].content }}").read_bytes()


def _read(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    start = time.monotonic()
    try:
        read_gguf_info(path)
    except InvalidModelError as exc:
        assert str(path) in str(exc)
    assert time.monotonic() - start < FAST_S


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _header(kvs: list[bytes], n_tensors: int = 0, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs)) + b"".join(kvs)


def _kv(key: bytes, vtype: int, payload: bytes) -> bytes:
    return _string(key) + struct.pack("<I", vtype) + payload


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_after_the_magic(scratch: Path, tail: bytes) -> None:
    _read(scratch, b"GGUF" + tail)


@FUZZ
@given(st.data())
def test_truncated_or_flipped_valid_file(scratch: Path, valid: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(valid)))
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), max_size=4)
    )
    body = bytearray(valid)
    for at, value in flips:
        body[at] = value
    _read(scratch, bytes(body[:cut]))


_ALIGNMENTS = [
    _kv(b"general.alignment", 4, struct.pack("<I", 0)),
    _kv(b"general.alignment", 8, _string(b"thirty-two")),
    _kv(b"general.alignment", 6, struct.pack("<f", float("nan"))),
    _kv(b"general.alignment", 6, struct.pack("<f", float("inf"))),
    _kv(b"general.alignment", 9, struct.pack("<IQ", 4, 2) + struct.pack("<II", 1, 2)),
    _kv(b"general.alignment", 11, struct.pack("<q", -32)),
]


@pytest.mark.parametrize("alignment", _ALIGNMENTS)
def test_a_nonsense_alignment_is_a_corrupt_file(scratch: Path, alignment: bytes) -> None:
    tensor = _string(b"t") + struct.pack("<IQIQ", 1, 4, 0, 0) + b"\0" * 64
    scratch.write_bytes(_header([alignment], n_tensors=1) + tensor)
    with pytest.raises(InvalidModelError, match="corrupt"):
        read_gguf_info(scratch)


def test_deeply_nested_arrays_are_a_corrupt_file(scratch: Path) -> None:
    nested = struct.pack("<IQ", 9, 1) * 100_000 + struct.pack("<IQ", 4, 1) + b"\0" * 4
    scratch.write_bytes(_header([_kv(b"k", 9, nested)]))
    start = time.monotonic()
    with pytest.raises(InvalidModelError, match="corrupt"):
        read_gguf_info(scratch)
    assert time.monotonic() - start < FAST_S


def test_metadata_of_the_wrong_type_is_ignored(scratch: Path) -> None:
    kvs = [
        _kv(b"general.name", 4, struct.pack("<I", 7)),
        _kv(b"general.architecture", 4, struct.pack("<I", 7)),
        _kv(b"tokenizer.chat_template", 5, struct.pack("<i", -1)),
    ]
    scratch.write_bytes(_header(kvs))
    info = read_gguf_info(scratch)
    assert (info.name, info.architecture, info.chat_template) == (None, "unknown", None)


_values = st.one_of(
    st.tuples(st.sampled_from([0, 1, 7]), st.binary(min_size=1, max_size=1)),
    st.tuples(st.sampled_from([2, 3]), st.binary(min_size=2, max_size=2)),
    st.tuples(st.sampled_from([4, 5, 6]), st.binary(min_size=4, max_size=4)),
    st.tuples(st.sampled_from([10, 11, 12]), st.binary(min_size=8, max_size=8)),
    st.tuples(st.just(8), st.binary(max_size=12).map(_string)),
    st.tuples(
        st.just(9),
        st.tuples(st.integers(0, 13), st.integers(0, 2**64 - 1), st.binary(max_size=40)).map(
            lambda t: struct.pack("<IQ", t[0], t[1]) + t[2]
        ),
    ),
    st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=8)),
)
_keys = st.sampled_from(
    [
        b"general.alignment",
        b"general.architecture",
        b"general.name",
        b"general.file_type",
        b"general.type",
        b"llama.context_length",
        b"tokenizer.chat_template",
        b"x",
    ]
)


@FUZZ
@given(
    st.lists(st.tuples(_keys, _values), max_size=6),
    st.integers(0, 3),
    st.binary(max_size=80),
)
def test_structured_random_headers(
    scratch: Path, kvs: list[tuple[bytes, tuple[int, bytes]]], n_tensors: int, tail: bytes
) -> None:
    body = _header([_kv(k, vtype, payload) for k, (vtype, payload) in kvs], n_tensors)
    _read(scratch, body + tail)
