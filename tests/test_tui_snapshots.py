"""SVG snapshots of the app's layout (deterministic: scripted model, fixed conversations).

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the pictures in ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.rag.index import Hit
from tests.test_tui_app import wait_until
from tui.app import ChatApp
from tui.widgets.prompt_input import PromptInput

SIZE = (120, 34)
REPLY = "Use a list comprehension:\n\n```python\nsquares = [n * n for n in range(10)]\n```\n"


def _store() -> tuple[MemoryStore, str]:
    store = MemoryStore.in_memory()
    other = store.create_conversation(
        strategy="buffer",
        title="Kettle descaling",
        conversation_id="c1",
        created_at="2026-01-01T00:00:00",
    )
    store.add_message(other.id, "user", "How do I descale a kettle?")
    main = store.create_conversation(
        strategy="summary_buffer",
        title="Python squares",
        conversation_id="c2",
        system_prompt="You are a concise Python tutor.",
        created_at="2026-01-02T00:00:00",
    )
    store.add_message(main.id, "user", "How do I square the numbers 0 to 9?")
    store.add_message(main.id, "assistant", REPLY)
    return store, main.id


def _app(**kwargs: Any) -> ChatApp:
    store, cid = _store()
    backend = ScriptedBackend(context_length=2048)
    return ChatApp(load_config(), backend=backend, store=store, conversation_id=cid, **kwargs)


async def _settle(pilot: Pilot[Any]) -> None:
    # The chat screen composes itself after the app is ready (App.run starts the pilot then).
    await wait_until(pilot, lambda: bool(pilot.app.query(PromptInput)))
    pilot.app.query_one(PromptInput).cursor_blink = False  # a blinking cursor is a coin toss
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_snapshot_chat_layout(snap_compare: Any) -> None:
    """The main screen: the sidebar lists "Python squares" (highlighted) above "Kettle
    descaling"; the chat shows the user's question labelled "You" and the reply labelled
    "Assistant" with a highlighted Python code block; under it the context bar (system,
    history and reserve segments with a legend), the empty prompt box, and the status bar
    "scripted · ready · chat · – tok/s · N/2048 tokens"; the footer lists the keys."""
    assert snap_compare(_app(), terminal_size=SIZE, run_before=_settle)


def test_snapshot_agent_steps_and_sources(snap_compare: Any) -> None:
    """An agent reply with one collapsed step block "step 1: calculator(17*23)" under it,
    and the sources panel on the right listing "[1]* /docs/kettle.md:3-4 — Kettle" (cited,
    starred) and "[2] /docs/bike.txt:1-2", with the chunk of [1] shown below the list."""
    store, cid = _store()
    store.add_message(cid, "user", "What is 17*23?")
    store.add_message(
        cid,
        "assistant",
        "391",
        steps=[
            {
                "index": 1,
                "thought": "I multiply.",
                "tool": "calculator",
                "tool_input": "17*23",
                "observation": "391",
                "error": False,
            }
        ],
    )
    app = ChatApp(
        load_config(),
        backend=ScriptedBackend(context_length=2048),
        store=store,
        conversation_id=cid,
    )
    hits = [
        Hit("/docs/kettle.md", None, 3, 4, "Kettle", 0.9, "Descale monthly. Use vinegar.", 0.8),
        Hit("/docs/bike.txt", None, 1, 2, "", 0.5, "Oil the chain.", 0.6),
    ]

    async def before(pilot: Pilot[Any]) -> None:
        await _settle(pilot)
        app.chat.turns.show_sources(hits, [1])
        await _settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_delete_confirm_modal(snap_compare: Any) -> None:
    """The delete confirmation: a modal over the dimmed chat asking "Delete “Python
    squares” and all its messages?" with the buttons Delete and Keep (Keep focused)."""

    async def before(pilot: Pilot[Any]) -> None:
        await _settle(pilot)
        pilot.app.query_one("#prompt").focus()
        await pilot.press(*"/delete", "enter")
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=before)
