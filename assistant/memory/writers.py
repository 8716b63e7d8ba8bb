"""Which process is streaming a reply: an id that survives pid reuse, and a liveness check."""

from __future__ import annotations

import os
from pathlib import Path


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (state first); None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _proc_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of process ``pid``; None if unknown."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def writer_id() -> str:
    """Identify this process, robust against pid reuse where /proc exists."""
    pid = os.getpid()
    return f"{pid}:{_proc_start(pid) or ''}"


def writer_alive(writer: str | None) -> bool:
    """Whether the process named by ``writer`` (from :func:`writer_id`) still runs."""
    if not writer:
        return False
    pid_text, _, start = writer.partition(":")
    try:
        os.kill(int(pid_text), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    fields = _proc_stat(int(pid_text))
    if fields is None:
        return True  # no /proc: trust the signal check
    # A zombie (killed, not yet reaped) or a new process that reused the pid is not it.
    return fields[0] != "Z" and (not start or fields[19] == start)
