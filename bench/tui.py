"""Chat app benchmark: streaming overhead of the UI, and startup time.

- ``ratio``: seconds to stream a fixed 1,000-token Markdown reply (paragraphs and a code
  block) through the app headless (prompt box
  to finished reply, stored by ChatSession, shown in the chat view) divided by the seconds
  to consume the same ChatSession stream without any UI. The scripted backend yields the
  same 1,000 tokens at a fixed pace (``TOKEN_DELAY_S``, faster than the bundled model here),
  so the difference is the app's own cost. Median of ``RUNS``. Target: <= 1.05.
- ``ratio_vs_backend``: the app against the bare backend stream (no store, no UI).
- ``startup_s``: in a real terminal (tmux), from launching ``python -m assistant chat`` with
  the real configuration to a key typed into the prompt showing on screen (the key is sent
  as soon as the prompt box is drawn, at ``paint_s``; the bundled model loads in a worker
  meanwhile); ``model_ready_s``: until the status bar says the model is ready. Medians of
  3. Without tmux, the same is measured headless through Textual's pilot
  (``startup_method``: "pilot"), where a key press also waits for the app to be idle.

The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.backends.base import GenerationOptions, Token  # noqa: E402
from assistant.backends.scripted import ScriptedBackend  # noqa: E402
from assistant.config import load_config  # noqa: E402
from assistant.memory.factory import open_session  # noqa: E402
from assistant.memory.store import MemoryStore  # noqa: E402

TOKENS = 1000
TOKEN_DELAY_S = 0.01  # 100 tok/s: a fast local model (the bundled one does 10-30 here)
RUNS = 3


def _pieces(text: str) -> int:
    """How many tokens the scripted backend makes of ``text`` (it splits at spaces)."""
    return len([w for w in text.replace(" ", "\x00 ").split("\x00") if w])


def _reply(tokens: int) -> str:
    """A Markdown reply of exactly ``tokens`` scripted tokens: paragraphs and a code block."""
    code = "\n\n```python\nfor n in range(10):\n    print(n * n)\n```"
    words = tokens
    while True:
        w = [f"w{i}" for i in range(words)]
        text = "\n\n".join(" ".join(w[i : i + 50]) for i in range(0, words, 50)) + code
        if _pieces(text) == tokens:
            return text
        words += tokens - _pieces(text)


REPLY = _reply(TOKENS)
PROMPT = "Tell me a long story."


def _backend() -> ScriptedBackend:
    return ScriptedBackend(context_length=8192, delay_s=TOKEN_DELAY_S)


def time_backend() -> float:
    """Seconds to consume the reply straight from the backend."""
    backend = _backend()
    backend.enqueue(REPLY)
    start = time.perf_counter()
    n = sum(
        1
        for e in backend.stream([{"role": "user", "content": PROMPT}], GenerationOptions())
        if isinstance(e, Token)
    )
    assert n == TOKENS
    return time.perf_counter() - start


def time_session() -> float:
    """Seconds to consume the reply through ChatSession (stored as it streams), no UI."""
    config = load_config({"max_tokens": 2000})
    backend = _backend()
    backend.enqueue(REPLY)
    session = open_session(config, MemoryStore.in_memory(), backend)
    start = time.perf_counter()
    n = sum(1 for e in session.send(PROMPT) if isinstance(e, Token))
    assert n == TOKENS
    return time.perf_counter() - start


async def time_app() -> float:
    """Seconds from pressing Enter to the finished reply in the app (headless)."""
    from tui.app import ChatApp
    from tui.widgets.message import ChatMessageView
    from tui.widgets.prompt_input import PromptInput

    backend = _backend()
    backend.enqueue(REPLY)
    config = load_config({"max_tokens": 2000})
    app = ChatApp(config, backend=backend, store=MemoryStore.in_memory())
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        box = app.query_one(PromptInput)
        box.focus()
        box.load_text(PROMPT)
        await pilot.pause()
        start = time.perf_counter()
        await pilot.press("enter")
        await app.workers.wait_for_complete()  # the reply ended and finish_live ran
        await pilot.pause()  # and its final full render
        elapsed = time.perf_counter() - start
        reply = list(app.query(ChatMessageView))[-1]
        assert reply.text == REPLY, reply.text[-80:]
    return elapsed


STARTUP_CHILD = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from assistant.config import load_config
from tui.app import ChatApp
from tui.widgets.prompt_input import PromptInput

def stamp(what):
    with open(sys.argv[1], "a") as fh:
        fh.write(f"{{what}} {{time.time()}}\\n")

async def main():
    app = ChatApp(load_config())
    async with app.run_test() as pilot:
        await pilot.press("x")
        while app.query_one(PromptInput).text != "x":
            await pilot.pause(0.005)
        # Not stdout: the app captures print().
        stamp("KEYS")
        while app.status_bar.state != "ready":
            await pilot.pause(0.01)
        stamp("READY")

asyncio.run(main())
"""


def _tmux(socket: str, *args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False
    )
    return done.stdout


def _prompt_shows(screen: str, key: str) -> bool:
    """Whether a line of the prompt box starts with ``key`` (inside its border)."""
    return any(line.strip(" │┃▊▎▌▐").startswith(key) for line in screen.splitlines())


def time_startup_terminal() -> tuple[float, float, float]:
    """(paint_s, startup_s, model_ready_s) in a real terminal run by tmux."""
    socket = f"assistant-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as home:
        command = " ".join(
            [
                f"cd {ROOT} && env ASSISTANT_HOME={home} ASSISTANT_N_THREADS=1",
                f"TERM=xterm-256color {sys.executable} -m assistant chat",
            ]
        )
        start = time.monotonic()
        _tmux(socket, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40", command)
        marks: dict[str, float] = {}
        screen = ""
        try:
            while time.monotonic() - start < 120 and len(marks) < 3:
                screen = _tmux(socket, "capture-pane", "-p", "-t", "b")
                now = time.monotonic() - start
                if "paint" not in marks and "Ask anything" in screen:
                    marks["paint"] = now
                    _tmux(socket, "send-keys", "-t", "b", "-l", "q")
                if "paint" in marks and "key" not in marks and _prompt_shows(screen, "q"):
                    marks["key"] = now
                if "ready" not in marks and "· ready ·" in screen:
                    marks["ready"] = now
                time.sleep(0.01)
        finally:
            _tmux(socket, "kill-server")
    if len(marks) < 3:
        raise RuntimeError(f"the app in tmux got only {marks}; the pane showed:\n{screen}")
    return marks["paint"], marks["key"], marks["ready"]


def time_startup() -> tuple[float, float]:
    """Headless (pilot): (seconds to a prompt that took a key, seconds to the model ready)."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ASSISTANT_HOME": home, "ASSISTANT_N_THREADS": "1"}
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-c", STARTUP_CHILD.format(root=str(ROOT)), f"{home}/stamps"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        said = Path(home, "stamps").read_text() if Path(home, "stamps").exists() else ""
    stamps = dict(re.findall(r"(KEYS|READY) ([0-9.]+)", said))
    if len(stamps) != 2:
        raise RuntimeError(f"startup child said {done.stdout!r} {done.stderr[-2000:]!r}")
    return float(stamps["KEYS"]) - start, float(stamps["READY"]) - start


def main() -> None:
    """Run every measurement and print the figures."""
    backend_s = statistics.median(time_backend() for _ in range(RUNS))
    session_s = statistics.median(time_session() for _ in range(RUNS))
    app_s = statistics.median(asyncio.run(time_app()) for _ in range(RUNS))
    if shutil.which("tmux"):
        method = "terminal"
        terminal = [time_startup_terminal() for _ in range(3)]
        paint = statistics.median(p for p, _, _ in terminal)
        startups = [(k, r) for _, k, r in terminal]
    else:
        method, paint = "pilot", None
        startups = [time_startup() for _ in range(3)]
    result = {
        "tokens": TOKENS,
        "token_delay_s": TOKEN_DELAY_S,
        "backend_s": round(backend_s, 3),
        "session_s": round(session_s, 3),
        "app_s": round(app_s, 3),
        "ratio": round(app_s / session_s, 3),
        "ratio_vs_backend": round(app_s / backend_s, 3),
        "startup_method": method,
        "paint_s": None if paint is None else round(paint, 3),
        "startup_s": round(statistics.median(s for s, _ in startups), 3),
        "model_ready_s": round(statistics.median(r for _, r in startups), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
