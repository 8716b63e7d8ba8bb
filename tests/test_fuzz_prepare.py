"""`train prepare`'s JSONL reader and PII scrubber under random input: no crash, no loss, fast.

Whatever bytes a training file holds, ``read_examples`` returns examples and ``file:line``
problems (or refuses a file that is not text with TrainingError), quickly; a valid record
comes back exactly as written; the linear e-mail scan redacts what the old regex did.
"""

from __future__ import annotations

import codecs
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from training.manifest import TrainingError
from training.prepare import parse_line, read_examples, scrub_pii

FAST_S = 1.0
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROLES = {"system", "user", "assistant"}
_DIR = Path(tempfile.mkdtemp(prefix="fuzz-prepare-"))

# -- what a line can hold ------------------------------------------------------------------

_KEYS = st.sampled_from(["messages", "role", "content", "instruction", "input", "output"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
_turn = st.fixed_dictionaries(
    {
        "role": st.sampled_from([*ROLES, "tool", ""]) | _json,
        "content": st.text(max_size=20) | _json,
    }
)
_record = (
    st.fixed_dictionaries({"messages": st.lists(_turn, max_size=4) | _json})
    | st.fixed_dictionaries(
        {"instruction": st.text(max_size=10) | _json, "output": st.text(max_size=10) | _json},
        optional={"input": st.text(max_size=10) | _json},
    )
    | _json
)
_line = (
    _record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    | st.binary(max_size=40)
    | st.text(max_size=30).map(lambda t: t.encode("latin-1", "replace"))
    | st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.sampled_from([b"", b"\r", b"   ", codecs.BOM_UTF8, b"{", b"\xef\xbb\xbf{}"])
)
_WIDE = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _write(data: bytes) -> Path:
    path = _DIR / "fuzz.jsonl"
    path.write_bytes(data)
    return path


def _valid(example: Any) -> bool:
    """What every example handed to tokenization must be."""
    return (
        isinstance(example, list)
        and bool(example)
        and all(set(m) == {"role", "content"} and m["role"] in ROLES for m in example)
        and all(isinstance(m["content"], str) and m["content"].strip() for m in example)
        and example[-1]["role"] == "assistant"
    )


@FUZZ
@given(st.lists(_line, max_size=8))
@example([b"\x00"])
@example([codecs.BOM_UTF16_LE + b"{"])
@example([b"[" * 100_000])
@example([b'{"messages": [{"role": ["user"], "content": "x"}]}'])
@example([b'{"instruction": "q", "output": "\\ud800"}'])
def test_read_examples_never_crashes_and_accounts_for_every_line(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    path = _write(data)
    start = time.monotonic()
    try:
        examples, problems = read_examples([path])
    except TrainingError as exc:
        assert b"\0" in data or data.startswith(_WIDE), exc
        assert str(exc).startswith(f"{path}:")
        return
    assert time.monotonic() - start < FAST_S
    assert b"\0" not in data and not data.startswith(_WIDE)
    assert all(_valid(example) for example in examples)
    records = data.split(b"\n")  # a binary "line" may hold a newline of its own
    numbers = [int(p.removeprefix(f"{path}:").split(":")[0]) for p in problems]
    assert numbers == sorted(numbers) and all(1 <= n <= len(records) for n in numbers)
    blank = sum(
        not raw.decode("utf-8", "replace").removeprefix("\ufeff").strip() for raw in records
    )
    assert len(examples) + len(problems) == len(records) - blank


@FUZZ
@given(_record)
def test_parse_line_returns_a_valid_example_or_raises_value_error(record: Any) -> None:
    try:
        messages = parse_line(record)
    except ValueError as exc:
        assert str(exc)
    else:
        assert _valid(messages)


_text = st.text(st.characters(codec="utf-8") | st.sampled_from("\u2028\x85\x0c\t\r"), min_size=1)
_good_record = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": _text}),
            max_size=3,
        ).map(lambda turns: [*turns, {"role": "assistant", "content": "x"}])
    }
) | st.fixed_dictionaries({"instruction": _text, "output": _text})


@FUZZ
@given(
    st.lists(_good_record, min_size=1, max_size=5),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
)
def test_valid_records_come_back_exactly_as_written(
    records: list[dict[str, Any]], ascii_only: bool, bom: bool, newline: str
) -> None:
    records = [r for r in records if all(_has_text(v) for v in _texts(r))]
    text = newline.join(json.dumps(r, ensure_ascii=ascii_only) for r in records)
    path = _write((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"))
    examples, problems = read_examples([path])
    assert problems == []
    assert examples == [parse_line(r) for r in records]


def _texts(record: dict[str, Any]) -> list[str]:
    if "messages" in record:
        return [m["content"] for m in record["messages"]]
    return [record["instruction"], record["output"]]


def _has_text(value: str) -> bool:
    return bool(value.strip())


# -- the PII scrubber ------------------------------------------------------------------------

# The patterns as they were before the linear e-mail scan.
_BEFORE = [
    ("[EMAIL]", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("[CARD]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("[IP]", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    ("[PHONE]", re.compile(r"(?<!\w)\+?\d[\d ().-]{7,}\d(?!\w)")),
]
_address_text = st.text(st.sampled_from("ab_1é.+-@ \n(),;") | st.characters(), max_size=60)


@FUZZ
@given(_address_text)
@example("x@y.z+w@v.u")
@example("a@b.c@d.e")
@example("+a@b.c")
def test_scrub_pii_redacts_what_the_old_patterns_did(text: str) -> None:
    before = text
    for placeholder, pattern in _BEFORE:
        before = pattern.sub(placeholder, before)
    assert scrub_pii(text) == before


@FUZZ
@given(st.text(st.sampled_from("a1.@+- "), min_size=1, max_size=8), st.integers(1000, 20_000))
def test_scrub_pii_is_fast_on_long_repetitions(unit: str, times: int) -> None:
    start = time.monotonic()
    scrub_pii(unit * times)
    assert time.monotonic() - start < FAST_S
