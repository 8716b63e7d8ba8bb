"""The chat app, headless with Pilot: scripted backend for flows, the real model once."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from assistant.backends.llama_local import LlamaCppBackend
from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from tui.app import ChatApp
from tui.widgets.message import ChatMessageView


async def wait_idle(app: ChatApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def test_send_message_streams_reply() -> None:
    backend = ScriptedBackend(["Hello there, human."])
    app = ChatApp(load_config(), backend=backend)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_idle(app, pilot)
        await pilot.click("#prompt")
        await pilot.press(*"Hi!")
        await pilot.press("enter")
        await wait_idle(app, pilot)
        views = list(app.query(ChatMessageView))
        assert [(v.role, v.text) for v in views] == [
            ("user", "Hi!"),
            ("assistant", "Hello there, human."),
        ]
        assert app.query_one("#prompt", Input).value == ""
        assert app.history[-1] == {"role": "assistant", "content": "Hello there, human."}
        assert "tok/s" in str(app.query_one("#status", Static).render())


async def test_error_gives_the_typed_text_back() -> None:
    from assistant.errors import ContextOverflowError

    backend = ScriptedBackend([ContextOverflowError("too long; start a new conversation")])
    app = ChatApp(load_config(), backend=backend)
    async with app.run_test() as pilot:
        await wait_idle(app, pilot)
        app.query_one("#prompt", Input).value = "a long question"
        await pilot.press("enter")
        await wait_idle(app, pilot)
        view = list(app.query(ChatMessageView))[-1]
        assert view.has_class("error")
        assert app.history == []
        assert not app.generating
        assert app.query_one("#prompt", Input).value == "a long question"


async def test_real_model_answers_in_the_app(smol: LlamaCppBackend, home: Path) -> None:
    app = ChatApp(load_config(), backend=smol)
    async with app.run_test() as pilot:
        await wait_idle(app, pilot)
        app.query_one("#prompt", Input).value = "What is the capital of France?"
        await pilot.press("enter")
        await wait_idle(app, pilot)
        reply = list(app.query(ChatMessageView))[-1]
        assert "Paris" in reply.text
