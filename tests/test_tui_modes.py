"""The app's modes are per conversation, and every mode's turn goes through the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.tools import make_calculator_tool
from tests.test_tui_app import make_app, settle, shown, type_and_send
from tui.app import ChatApp
from tui.widgets.conversation_list import ConversationList
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar


async def test_documents_mode_is_restored_when_the_app_restarts_on_its_conversation(
    home: Path,
) -> None:
    """Both apps open the memory database of the data directory themselves."""
    first = ChatApp(load_config(), backend=ScriptedBackend(["Hello."]))
    async with first.run_test() as pilot:
        await settle(first, pilot)
        await type_and_send(pilot, "hello")
        await settle(first, pilot)
        await type_and_send(pilot, "/documents")
        await settle(first, pilot)
        cid = first.chat.conversation_id
        assert cid is not None and first.chat.mode == "documents"
    assert MemoryStore.open(home / "memory.db").conversation(cid).mode == "documents"

    backend = ScriptedBackend(["unused"])
    second = ChatApp(load_config(), backend=backend, conversation_id=cid, doc_search=lambda q: [])
    async with second.run_test() as pilot:
        await settle(second, pilot)
        assert second.chat.conversation_id == cid
        assert second.chat.mode == "documents"
        assert second.query_one(StatusBar).mode == "documents"
        assert second.query_one(SourcesPanel).display
        await type_and_send(pilot, "where are my keys?")
        await settle(second, pilot)
        # Answered from documents: none is relevant, so the model is not asked.
        assert shown(second)[-1] == ("assistant", "I found nothing about that in your documents.")
        assert backend.calls == []


async def test_opening_a_conversation_answers_in_its_mode_and_a_new_one_in_chat() -> None:
    store = MemoryStore.in_memory()
    tools = store.create_conversation(strategy="buffer", title="Sums", mode="agent")
    store.add_message(tools.id, "user", "What is 2+2?")
    plain = store.create_conversation(strategy="buffer", title="Hello")
    store.add_message(plain.id, "user", "hi")
    backend = ScriptedBackend(["Final Answer: 6", "Plain answer."])
    app, _ = make_app(backend, store=store, tools=[make_calculator_tool()])
    async with app.run_test() as pilot:
        await settle(app, pilot)
        status = app.query_one(StatusBar)
        app.chat.post_message(ConversationList.Selected(tools.id))
        await settle(app, pilot)
        assert (app.chat.mode, status.mode) == ("agent", "agent")
        await type_and_send(pilot, "And 3+3?")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "6")
        reply = store.messages(tools.id)[-1]
        assert reply.memory["mode"] == "agent" and reply.steps is not None
        app.chat.post_message(ConversationList.Selected(plain.id))
        await settle(app, pilot)
        assert (app.chat.mode, status.mode) == ("chat", "chat")
        app.chat.post_message(ConversationList.Selected(tools.id))
        await settle(app, pilot)
        assert app.chat.mode == "agent"
        await type_and_send(pilot, "/new")
        await settle(app, pilot)
        assert app.chat.conversation_id is None
        assert (app.chat.mode, status.mode) == ("chat", "chat")
        await type_and_send(pilot, "hello again")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "Plain answer.")
        new = app.chat.conversation_id
        assert new is not None and store.conversation(new).mode == "chat"
        assert store.conversation(tools.id).mode == "agent"  # switching never changed it


async def test_a_mode_chosen_before_the_first_message_is_stored_with_the_conversation() -> None:
    app, store = make_app(ScriptedBackend(["Final Answer: 4"]), tools=[make_calculator_tool()])
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/tools")
        await settle(app, pilot)
        assert store.conversations() == []  # a mode alone stores no conversation
        await type_and_send(pilot, "What is 2+2?")
        await settle(app, pilot)
        [conversation] = store.conversations()
        assert conversation.mode == "agent"
        assert store.messages(conversation.id)[-1].memory["mode"] == "agent"


@pytest.mark.parametrize(
    ("command", "reply", "shown_reply"),
    [
        ("/new", "Noted.", "Noted."),
        ("/documents", "unused", "I found nothing about that in your documents."),
        ("/tools", "Final Answer: Noted.", "Noted."),
    ],
    ids=["chat", "documents", "agent"],
)
async def test_remember_that_stores_a_fact_in_every_mode_and_says_so(
    command: str, reply: str, shown_reply: str
) -> None:
    tools = [make_calculator_tool()]
    app, store = make_app(ScriptedBackend([reply]), tools=tools, doc_search=lambda q: [])
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, command)
        await settle(app, pilot)
        await type_and_send(pilot, "remember that my cat is called Tom")
        await settle(app, pilot)
        assert [f.content for f in store.facts()] == ["my cat is called Tom"]
        notes = [str(n.message) for n in app._notifications]
        assert notes.count("remembered: my cat is called Tom") == 1
        assert shown(app)[-1] == ("assistant", shown_reply)
        cid = app.chat.conversation_id
        assert cid is not None
        assert [(m.role, m.content) for m in store.messages(cid)] == [
            ("user", "remember that my cat is called Tom"),
            ("assistant", shown_reply),
        ]
