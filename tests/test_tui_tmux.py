"""End to end in a real terminal: tmux runs ``python -m assistant chat`` on the bundled model."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Pane:
    """One detached tmux session on a private server socket."""

    def __init__(self, socket: str, name: str) -> None:
        self.socket = socket
        self.name = name

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return done.stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait_for(self, check: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if check(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{what} not seen in {timeout}s; the pane shows:\n{self.text()}")


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    home = tmp_path / "home"
    home.mkdir()
    socket = f"assistant-test-{os.getpid()}"
    env = {
        "ASSISTANT_HOME": str(home),
        "ASSISTANT_N_THREADS": "1",
        "ASSISTANT_TEMPERATURE": "0",
        "ASSISTANT_MAX_TOKENS": "48",
        "TERM": "xterm-256color",
    }
    command = " ".join(
        [
            f"cd {ROOT} &&",
            "env",
            *(f"{k}={v}" for k, v in env.items()),
            sys.executable,
            "-m",
            "assistant",
            "chat",
        ]
    )
    result = Pane(socket, "chat")
    result.tmux("new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", command)
    try:
        yield result
    finally:
        result.tmux("kill-server")


def _stored_reply(db_path: Path, timeout: float) -> str:
    """The first assistant reply once the app has stored it complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db_path.exists():
            with sqlite3.connect(db_path) as db:
                row = db.execute(
                    "SELECT content FROM messages WHERE role = 'assistant' AND status = 'complete'"
                ).fetchone()
            if row and row[0].strip():
                return str(row[0])
        time.sleep(0.2)
    raise AssertionError(f"no complete reply stored in {timeout}s")


def test_chat_in_tmux_answers_from_the_bundled_model(pane: Pane, tmp_path: Path) -> None:
    pane.wait_for(lambda s: "Ask anything" in s, 60, "the prompt box")
    pane.wait_for(lambda s: "· ready ·" in s, 120, "the model being ready")
    pane.tmux("send-keys", "-t", "chat", "-l", "What is the capital of France?")
    pane.tmux("send-keys", "-t", "chat", "Enter")
    db_path = tmp_path / "home" / "memory.db"
    reply = _stored_reply(db_path, 120)
    # What the model says differs between CPUs: the screen must show the reply it stored
    # (its first words; the rest may wrap), with the speed of that reply.
    first_words = " ".join(re.sub(r"[*_`#>]", "", reply).split()[:3])
    screen = pane.wait_for(
        lambda s: first_words in " ".join(s.split()) and "tok/s" in s and "· ready ·" in s,
        60,
        f"the stored reply ({first_words!r})",
    )
    assert "What is the capital of France?" in screen
    pane.tmux("send-keys", "-t", "chat", "C-q")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "chat" in pane.tmux("list-sessions"):
        time.sleep(0.2)
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT role, content, status FROM messages ORDER BY seq").fetchall()
    assert rows[0] == ("user", "What is the capital of France?", "complete")
    assert rows[1] == ("assistant", reply, "complete")
