"""The fork zygote behind the kill -9 soaks: run a writer in a child, SIGKILL it, check.

The parent imports the heavy libraries once and then only forks. It never opens a
database, a chromadb client or a torch thread pool itself: every writer *and every check*
runs in a child forked from it, which opens its own, so each child starts from the same
clean state and no lock, connection or half-built pool crosses a fork. Before each fork
the parent makes sure it runs a single thread (jemalloc's background thread, started by
pyarrow and rebuilt by jemalloc's own fork handlers, is the only other one allowed).

A writer child says what it has committed by appending a line to a log, with one
``os.write`` after the commit returned: a line in the log is a promise that the item is
on disk, which the next check holds it to.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Threads the zygote may hold at a fork: jemalloc re-creates its background thread itself.
FORK_SAFE_THREADS = frozenset({"jemalloc_bg_thd"})
# Run first in every writer child, never in a check: bugs planted to show the checks bite.
PLANTED: list[Callable[[], None]] = []


@dataclass
class Figures:
    """What one writer's soak did and found."""

    writer: str
    kills: int = 0
    runs: int = 0  # writer runs, killed or not
    checked: int = 0  # distinct committed items verified (each again after every later kill)
    lost: int = 0  # committed items missing or changed
    corrupt: int = 0  # checks that found a damaged database or impossible rows
    resumed: int = 0  # kills after which the next run carried on where it should
    not_resumed: int = 0  # kills after which the next run redid or skipped work
    failed_runs: int = 0  # runs that ended in an error instead of carrying on
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the writer's own figures
    seconds: float = 0.0

    def problem(self, text: str) -> None:
        """Record one finding (the first few are printed)."""
        self.problems.append(text)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


class Log:
    """An append-only file of committed items, one line each, whole lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, *fields: object) -> None:
        """Append one line with a single write (a kill never leaves half of it)."""
        line = (" ".join(str(f) for f in fields) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def lines(self) -> list[list[str]]:
        """Every whole line, split into fields."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        whole = text[: text.rfind("\n") + 1]
        return [line.split(" ") for line in whole.splitlines() if line]


def threads() -> list[str]:
    """The names of this process's threads."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            names.append(Path(f"/proc/self/task/{tid}/comm").read_text().strip())
        except OSError:  # it ended meanwhile
            continue
    return names


def _fork(body: Callable[[], None], output: Path | None = None, writer: bool = True) -> int:
    others = threads()[1:]
    unsafe = [name for name in others if name not in FORK_SAFE_THREADS]
    if unsafe:
        raise RuntimeError(
            f"the zygote runs threads {unsafe}: something opened a pool or client in the "
            "parent, and a forked child could deadlock on its locks"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # the zygote's objects: never scanned (nor copied) by a child's collections
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if output is not None:  # the writer's chatter (Trainer logs, warnings)
                fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
            for plant in PLANTED if writer else []:
                plant()
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def _wait(pid: int, seconds: float) -> int | None:
    """Wait up to ``seconds`` for child ``pid``; its exit code, or None if it still runs."""
    fd = os.pidfd_open(pid)
    try:
        select.select([fd], [], [], max(0.0, seconds))
    finally:
        os.close(fd)
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def run_killed(
    body: Callable[[], None], kill_after_s: float, output: Path | None = None
) -> int | None:
    """Run ``body`` in a child and SIGKILL it after ``kill_after_s``.

    Returns the child's exit code if it ended first, None if the kill ended it. The
    child's stdout and stderr go to ``output`` when given.
    """
    pid = _fork(body, output)
    code = _wait(pid, kill_after_s)
    if code is not None:
        return code
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)  # reaped: its pid is free, its locks released
    code = os.waitstatus_to_exitcode(status)
    return None if code == -signal.SIGKILL else code


def run_to_end(
    body: Callable[[], None], timeout_s: float = 600.0, output: Path | None = None
) -> int:
    """Run ``body`` in a child to its end; its exit code."""
    pid = _fork(body, output)
    code = _wait(pid, timeout_s)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise TimeoutError(f"a soak child ran past {timeout_s:.0f} s")
    return code


def check(body: Callable[[], dict[str, Any]], timeout_s: float = 600.0) -> dict[str, Any]:
    """Run the check ``body`` in a child (never killed); the dict it returned."""
    fd, name = tempfile.mkstemp(prefix="soak-check-", suffix=".json")
    os.close(fd)
    out = Path(name)

    def child() -> None:
        out.write_text(json.dumps(body()), encoding="utf-8")

    try:
        pid = _fork(child, writer=False)
        code = _wait(pid, timeout_s)
        if code is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"a soak check ran past {timeout_s:.0f} s")
        if code != 0:
            raise RuntimeError(f"a soak check failed (exit status {code}); see its traceback")
        return dict(json.loads(out.read_text(encoding="utf-8")))
    finally:
        out.unlink(missing_ok=True)


def tail(path: Path, lines: int = 3) -> str:
    """The last ``lines`` lines of a child's output file, for a problem report."""
    if not path.exists():
        return ""
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


def timed(figures: Figures, soak: Callable[[], None]) -> Figures:
    """Run ``soak`` and record how long it took."""
    started = time.monotonic()
    soak()
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def integrity_problems(db: Path, fts_table: str) -> list[str]:
    """``PRAGMA integrity_check`` and FTS5's own check against its content table."""
    conn = sqlite3.connect(db)
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        problems = [] if result == ["ok"] else [f"integrity_check: {result[:3]}"]
        try:
            conn.execute(
                f"INSERT INTO {fts_table}({fts_table}, rank) VALUES ('integrity-check', 1)"
            )
        except sqlite3.DatabaseError as exc:
            problems.append(f"{fts_table}: {exc}")
        conn.rollback()
        return problems
    finally:
        conn.close()
