"""Kill -9 soaks, bounded for CI: each writer SIGKILLed 20 times at seeded random moments.

The memory store (``ChatSession.send`` streaming into SQLite), the document ingest and
``train finetune`` on a tiny llama are each killed mid-work, then checked: nothing that was
reported committed is lost, no database is corrupt, the next ingest and training run
resume where they should, and the last runs finish whole (issue #18).

``bench/soak.py`` runs them in a fresh process that serves as the fork zygote: pytest's own
process may hold threads, connections and pools a fork must not copy. Here it uses the
hashing embedder; ``python bench/soak.py --kills 100`` runs more kills with MiniLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
KILLS = 20
SEED = 18


def soak(*args: str) -> dict[str, Any]:
    """Run bench/soak.py; the figures of its last line."""
    result = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)  # the summary, shown when a test fails
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    """One soak of the three writers (about a minute on two cores)."""
    return soak("--kills", str(KILLS), "--seed", str(SEED), "--fake-embedder")


def _clean(writer: dict[str, Any]) -> None:
    assert writer["kills"] == KILLS
    assert writer["problems"] == []
    assert (writer["lost"], writer["corrupt"], writer["failed_runs"]) == (0, 0, 0)


def test_memory_soak_keeps_every_committed_message(figures: dict[str, Any]) -> None:
    memory = figures["writers"]["memory"]
    _clean(memory)
    assert memory["checked"] >= 30  # messages, facts and whole replies, each re-checked
    assert memory["extra"]["interrupted_replies"] >= 1  # kills landed mid-reply
    # A "remember that" message and its fact are one transaction: no kill separates them.
    assert memory["extra"]["facts_missing"] == []


def test_ingest_soak_resumes_after_every_kill_and_indexes_every_file(
    figures: dict[str, Any],
) -> None:
    ingest = figures["writers"]["ingest"]
    _clean(ingest)
    assert (ingest["resumed"], ingest["not_resumed"]) == (KILLS, 0)
    extra = ingest["extra"]
    assert extra["unjudged_kills"] == 0
    assert extra["files"] >= 40 and extra["chunks"] == extra["expected_chunks"]


def test_training_soak_resumes_after_every_kill_and_finishes_every_run(
    figures: dict[str, Any],
) -> None:
    training = figures["writers"]["training"]
    _clean(training)
    assert (training["resumed"], training["not_resumed"]) == (KILLS, 0)
    assert training["extra"]["unjudged_kills"] == 0
    assert training["extra"]["finished_runs"] >= 1 and training["checked"] >= 1


def test_soak_json_line_sums_the_writers(figures: dict[str, Any]) -> None:
    assert figures["kills"] == {"memory": KILLS, "ingest": KILLS, "training": KILLS}
    assert (figures["lost"], figures["corrupt"]) == (0, 0)
    assert (figures["ingest_resumed"], figures["training_resumed"]) == (KILLS, KILLS)
    assert figures["messages_checked"] == figures["writers"]["memory"]["checked"]
    assert list(figures)[-1] == "seconds"


def test_memory_soak_catches_a_store_that_says_committed_too_early() -> None:
    """The checks bite: a store committing every 20th write loses what it reported."""
    found = soak("--writers", "memory", "--kills", "5", "--seed", "1", "--inject", "lazy-commit")
    assert found["lost"] > 0
    assert any("missing after kill" in p for p in found["writers"]["memory"]["problems"])


def test_the_zygote_refuses_to_fork_while_another_thread_runs() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from soak_zygote import run_to_end
    finally:
        sys.path.remove(str(BENCH))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with pytest.raises(RuntimeError, match="the zygote runs threads"):
            run_to_end(lambda: None)  # refused before forking
    finally:
        stop.set()
        thread.join()


def test_a_log_line_cut_short_is_not_read(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from soak_zygote import Log
    finally:
        sys.path.remove(str(BENCH))
    log = Log(tmp_path / "writer.log")
    log.write("U", 1)
    log.write("R", 1)
    with (tmp_path / "writer.log").open("a") as fh:
        fh.write("U 2")  # no newline: the write that a kill cut
    assert log.lines() == [["U", "1"], ["R", "1"]]
