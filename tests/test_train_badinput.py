"""Bad input to `train prepare`, `train finetune` and `history import`: one clear line, no loss.

Each case here once ended in a traceback, a hang or silently wrong data (issue #18).
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner, Result

from assistant.cli import cli
from training.prepare import scrub_pii

GOOD = json.dumps({"instruction": "Say hi", "output": "hi"})


def run_cli(*args: str) -> Result:
    """Invoke the CLI; an uncaught exception (exit code 1 under CliRunner too) fails here."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def one_error_line(result: Result) -> str:
    """The single ``error: ...`` line a refused command printed (exit status 1)."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# -- the PII scrubber: the same redactions as before, in linear time -----------------------

# The patterns as they were: the e-mail one is quadratic, the reference for the rewrite.
_BEFORE = [
    ("[EMAIL]", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("[CARD]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("[IP]", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    ("[PHONE]", re.compile(r"(?<!\w)\+?\d[\d ().-]{7,}\d(?!\w)")),
]


def scrub_before(text: str) -> str:
    """scrub_pii as it was before the linear e-mail scan."""
    for placeholder, pattern in _BEFORE:
        text = pattern.sub(placeholder, text)
    return text


@pytest.mark.parametrize(
    "text",
    [
        "Mail ada@example.org or call +44 20 7946 0958 from 192.168.1.20.",
        "a.b+c@d-e.co.uk. and <bob_1@ex.com>, eve@ex.org;",
        "x@y.z+w@v.u",  # a second address starts right where the first one ends
        "a@b.c@d.e",
        "a@b.c+d@e.f+g@h.i",
        "@x.y a@.b a@b. a@b..c a@-b.c -a@b.c +@a.b .@a.b a@b_c.d",
        "user@localhost and x@y",
        "étienne@exämple.fr ü@ö.de",
        "ab+@cd.ef++gh@ij.kl",
        "1.2.3.4@5.6 and 10.0.0.1",
        "a@b.c\nd@e.f\n",
        "no address here, only @ signs @ and dots.",
        "",
    ],
)
def test_scrub_pii_redacts_as_before(text: str) -> None:
    assert scrub_pii(text) == scrub_before(text)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Turn a hang into a failure (the regex engine checks for signals as it runs)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 2_000_000, None),
        ("a" * 1_000_000 + "@" + "b" * 1_000_000, None),
        ("a+" * 1_000_000 + "@", None),
        ("a@" * 1_000_000, None),
        ("ab.cd@" * 350_000, "[EMAIL]@" * 175_000),  # every other "@" is between two matches
        ("a@b.c+" * 350_000, "[EMAIL]" * 350_000 + "+"),
    ],
    ids=["word", "word@word", "plus-run", "at-run", "dotted", "chained"],
)
def test_scrub_pii_takes_linear_time_on_a_2mb_message(text: str, expected: str | None) -> None:
    with deadline(20):
        start = time.perf_counter()
        scrubbed = scrub_pii(text)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert scrubbed == (text if expected is None else expected)
