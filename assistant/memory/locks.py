"""One turn at a time per conversation, across threads and processes.

Two sends to one conversation must not interleave (user B, user A, reply B, reply A: one
prompt would hold the other's unanswered message). A turn holds an advisory ``flock`` on a
file beside the database, named after the conversation; the kernel releases it when the
holder dies, so a kill -9 never leaves a stale lock. In-memory stores (tests, demos) use a
lock per conversation inside the process.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assistant.errors import AssistantError

_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()


class ConversationBusyError(AssistantError):
    """Another turn of this conversation is still being answered."""


@contextmanager
def conversation_lock(
    db_path: Path | None, conversation_id: str, timeout_s: float = 600.0
) -> Iterator[None]:
    """Hold the conversation's turn lock; wait up to ``timeout_s`` for another holder."""
    key = (str(db_path or ":memory:"), conversation_id)
    with _GUARD:
        local = _THREAD_LOCKS.setdefault(key, threading.Lock())
    if not local.acquire(timeout=timeout_s):
        raise _busy(conversation_id)
    try:
        if db_path is None:
            yield
            return
        folder = db_path.parent / f"{db_path.name}.locks"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / conversation_id, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _busy(conversation_id) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock
    finally:
        local.release()


def _busy(conversation_id: str) -> ConversationBusyError:
    return ConversationBusyError(
        f"conversation {conversation_id} is still answering another message; wait for that "
        "reply (or stop it) and send again"
    )
