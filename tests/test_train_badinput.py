"""Bad input to `train prepare`, `train finetune` and `history import`: one clear line, no loss.

Each case here once ended in a traceback, a hang or silently wrong data (issue #18).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from assistant.cli import cli
from assistant.memory.store import MemoryStore
from training.prepare import parse_line, read_examples, scrub_pii

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


# -- train prepare: what a JSONL file can hold ---------------------------------------------


def test_prepare_names_the_line_of_a_latin1_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    latin = json.dumps({"instruction": "Café?", "output": "Oui."}, ensure_ascii=False)
    path.write_bytes(f"{GOOD}\n{latin}\n".encode("latin-1"))
    line = one_error_line(run_cli("train", "prepare", str(path), "--out", str(tmp_path / "d")))
    assert f"{path}:2: not UTF-8 (byte 0xe9 at column 21)" in line
    assert "save the file as UTF-8" in line and "--skip-invalid" in line
    examples, problems = read_examples([path])  # --skip-invalid keeps the good line
    assert len(examples) == 1 and [p.split(": ")[0] for p in problems] == [f"{path}:2"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (gzip.compress(f"{GOOD}\n".encode(), mtime=0), ":1: binary data, not JSONL text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":3: binary data, not JSONL text"),
        (f"{GOOD}\n".encode("utf-16"), ":1: UTF-16 text"),
    ],
    ids=["gzip", "png", "utf-16"],
)
def test_prepare_refuses_a_file_that_is_not_utf8_text(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    line = one_error_line(run_cli("train", "prepare", str(path), "--out", str(tmp_path / "d")))
    assert f"error: {path}{expected}" in line, line
    assert "UTF-8" in line


def test_prepare_reports_a_line_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(f"{GOOD}\n{'[' * 100_000}{']' * 100_000}\n", encoding="utf-8")
    line = one_error_line(run_cli("train", "prepare", str(path), "--out", str(tmp_path / "d")))
    assert f"{path}:2: nested too deeply" in line and "--skip-invalid" in line


def test_prepare_lists_several_bad_lines_then_one_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{GOOD}\nnot json\n{'[' * 5000}\n", encoding="utf-8")
    result = run_cli("train", "prepare", str(path), "--out", str(tmp_path / "d"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert [line.split(": ")[:2] for line in lines[:2]] == [
        ["invalid", f"{path}:2"],
        ["invalid", f"{path}:3"],
    ]
    assert lines[2].startswith("error: 2 invalid lines") and len(lines) == 3


def test_read_examples_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_text(f"{GOOD}\n{GOOD}\n", encoding="utf-8-sig")  # as Windows Notepad saves
    examples, problems = read_examples([path])
    assert problems == [] and len(examples) == 2


def test_read_examples_keeps_line_separators_inside_strings(tmp_path: Path) -> None:
    # JSON allows U+2028 and U+0085 raw in strings; only "\n" ends a JSONL record.
    answer = "one\u2028two\x85three\x0cfour"
    path = tmp_path / "seps.jsonl"
    path.write_text(
        json.dumps({"instruction": "q", "output": answer}, ensure_ascii=False) + "\r\n" + GOOD,
        encoding="utf-8",
    )
    examples, problems = read_examples([path])
    assert problems == []
    assert [ex[-1]["content"] for ex in examples] == [answer, "hi"]


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"instruction": "", "output": "x"}, "'instruction' is empty"),
        ({"instruction": " \n", "input": "text", "output": "x"}, "'instruction' is empty"),
        ({"instruction": "x", "output": ""}, "'output' is empty"),
        (
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]},
            "message 0 \\(user\\) is empty",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},
            "message 1 \\(assistant\\) is empty",
        ),
        (
            {
                "messages": [
                    {"role": "system", "content": ""},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "message 0 \\(system\\) is empty",
        ),
        ({"messages": [{"role": ["user"], "content": "q"}]}, "message 0 needs a role"),
        ({"messages": [{"role": "assistant", "content": "\ud800"}]}, "unpaired surrogate"),
    ],
)
def test_parse_line_rejects_empty_or_unusable_turns(record: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_line(record)


def test_read_examples_reports_empty_examples_by_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    empty = json.dumps({"instruction": "", "output": "x"})
    path.write_text(f"{GOOD}\n{empty}\n", encoding="utf-8")
    examples, problems = read_examples([path])
    assert len(examples) == 1
    assert problems == [f"{path}:2: 'instruction' is empty"]


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


# -- history import -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[1]", "not a conversation export"),
        (b'{"format": "assistant-conversation", "version": 1}', "damaged conversation export"),
        (
            json.dumps(
                {
                    "format": "assistant-conversation",
                    "version": 1,
                    "conversation": {"id": "c1", "strategy": "buffer", "title": "t"},
                    "summaries": [],
                    "messages": [],
                }
            ).encode(),
            "damaged conversation export",
        ),
        (b"[" * 100_000, "nested too deeply"),
        ('{"title": "café"}'.encode("latin-1"), "not UTF-8 (byte 0xe9 at line 1, column 15)"),
        (b'{\n  "format": oops\n}', "not JSON (Expecting value: line 2 column 13"),
    ],
    ids=["array", "no-conversation", "missing-fields", "deep", "latin-1", "syntax"],
)
def test_history_import_refuses_bad_files_in_one_line(
    tmp_path: Path, home: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(content)
    line = one_error_line(run_cli("history", "import", str(path)))
    assert line.startswith(f"error: {path}: ") and expected in line, line
    assert run_cli("history", "list", "--json").output.strip() == "[]"  # nothing half-imported


def test_history_import_accepts_a_byte_order_mark(tmp_path: Path, home: Path) -> None:
    store = MemoryStore.open(home / "memory.db")
    conversation = store.create_conversation(strategy="buffer", title="Cats")
    store.add_message(conversation.id, "user", "Hi")
    store.close()
    path = tmp_path / "export.json"
    assert run_cli("history", "export", conversation.id, "-o", str(path)).exit_code == 0
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8-sig")
    result = run_cli("history", "import", str(path), "--new-id", "copy")
    assert result.exit_code == 0 and "imported copy: Cats" in result.output, result.output


# -- finetune: resuming after a kill while a checkpoint was being written ------------------

_HP = {"rank": 2, "alpha": 4, "max_steps": 4, "batch_size": 2, "save_steps": 2}


class _Kill(Exception):
    """Stands in for kill -9 while the Trainer writes checkpoint-4."""


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny llama (HF directory), prepared data, and a run killed as checkpoint-4 is saved."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from transformers import TrainerCallback

    from tests.tiny_training import tiny_prepared_run
    from training.finetune import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("killed")
    parts = tiny_prepared_run(root, examples=8)
    base, home, data = parts["base"], parts["home"], parts["data"]

    class KillAtSave4(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: object, state: Any, control: object, **kw: object) -> None:
            if state.global_step == 4:
                raise _Kill

    with pytest.raises(_Kill):
        finetune(data, root / "run", base, home, FinetuneConfig(**_HP), False, [KillAtSave4()])
    assert sorted(p.name for p in (root / "run" / "checkpoints").iterdir()) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    return {"root": root, "base": base, "home": home, "data": data}


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _only_config(ckpt: Path) -> None:
    for p in ckpt.iterdir():
        if p.name != "adapter_config.json":
            p.unlink()


def _weights_cut(ckpt: Path) -> None:
    _cut(ckpt / "adapter_model.safetensors")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
        (ckpt / name).unlink()


def _rng_cut(ckpt: Path) -> None:
    _cut(ckpt / "rng_state.pth")
    (ckpt / "trainer_state.json").unlink()


def _state_cut(ckpt: Path) -> None:
    _cut(ckpt / "trainer_state.json")


# What a kill leaves depends on when it lands: the Trainer writes the weights, then the
# optimizer and scheduler, then the RNG state, and trainer_state.json last.
DAMAGE = {
    "only-config": _only_config,
    "weights-cut": _weights_cut,
    "rng-cut": _rng_cut,
    "state-cut": _state_cut,
}


def _damaged_copy(killed_run: dict[str, Any], tmp_path: Path, *names: str) -> Path:
    """A copy of the killed run with only ``adapter_config.json`` left in each named checkpoint."""
    run = tmp_path / "run"
    shutil.copytree(killed_run["root"] / "run", run)
    for name in names:
        _only_config(run / "checkpoints" / name)
    return run


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_finetune_resumes_from_the_last_complete_checkpoint(
    killed_run: dict[str, Any], tmp_path: Path, damage: str
) -> None:
    from transformers import TrainerCallback

    from training.finetune import FinetuneConfig, finetune

    run = tmp_path / "run"
    shutil.copytree(killed_run["root"] / "run", run)
    DAMAGE[damage](run / "checkpoints" / "checkpoint-4")
    steps: list[int] = []

    class Steps(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: object, state: Any, control: object, **kw: object) -> None:
            steps.append(state.global_step)

    notes: list[str] = []
    manifest = finetune(
        killed_run["data"],
        run,
        killed_run["base"],
        killed_run["home"],
        FinetuneConfig(**_HP),
        False,
        [Steps()],
        notify=notes.append,
    )
    assert steps == [3, 4]  # steps 1-2 came from checkpoint-2
    assert manifest["resumed"] is True and manifest["metrics"]["steps"] == 4
    aside = run / "checkpoints" / "incomplete" / "checkpoint-4"
    assert notes == [
        f"checkpoint-4 is incomplete (the run stopped while saving it); moved it to {aside}; "
        "resuming from checkpoint-2"
    ]
    assert aside.is_dir()
    state = json.loads((run / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # written again, complete this time


def test_finetune_starts_over_when_no_checkpoint_is_complete(
    killed_run: dict[str, Any], tmp_path: Path
) -> None:
    from training.finetune import FinetuneConfig, finetune

    run = _damaged_copy(killed_run, tmp_path, "checkpoint-4", "checkpoint-2")
    notes: list[str] = []
    manifest = finetune(
        killed_run["data"],
        run,
        killed_run["base"],
        killed_run["home"],
        FinetuneConfig(**_HP),
        False,
        notify=notes.append,
    )
    assert manifest["resumed"] is False and manifest["metrics"]["steps"] == 4
    assert len(notes) == 1 and notes[0].startswith("checkpoint-2, checkpoint-4 are incomplete")
    assert notes[0].endswith("; starting from step 0")


def test_finetune_cli_says_in_one_line_which_checkpoint_it_set_aside(
    killed_run: dict[str, Any], tmp_path: Path
) -> None:
    run = _damaged_copy(killed_run, tmp_path, "checkpoint-4")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in _HP.items()]
    result = run_cli("train", "finetune", str(killed_run["data"]), "--out", str(run), *flags)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    notes = [line for line in result.output.splitlines() if "incomplete" in line]
    assert notes == [
        f"checkpoint-4 is incomplete (the run stopped while saving it); moved it to "
        f"{run / 'checkpoints' / 'incomplete' / 'checkpoint-4'}; resuming from checkpoint-2"
    ]
    assert f"{run}: 4 steps" in result.output
