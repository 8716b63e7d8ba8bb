"""The app's versions: /regen and Ctrl+R, /edit, /versions and Alt+Left/Right, /copy, /good
and /bad, headless with Pilot (scripted backend; in-memory store, a real file for one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from assistant.backends.scripted import ScriptedBackend
from assistant.memory.preferences import preference_pairs
from assistant.memory.store import MemoryStore
from tests.test_tui_app import make_app, settle, shown, type_and_send
from tui.app import ChatApp
from tui.screens.edit_text import EditTextScreen
from tui.widgets.message import ChatMessageView
from tui.widgets.prompt_input import PromptInput


def titles(app: ChatApp) -> list[str]:
    return [str(v.border_title) for v in app.query(ChatMessageView) if v.role == "assistant"]


def notes(app: ChatApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _chat(pilot: Pilot[Any], app: ChatApp, *texts: str) -> None:
    await settle(app, pilot)
    for text in texts:
        await type_and_send(pilot, text)
        await settle(app, pilot)


async def test_ctrl_r_and_regen_keep_every_version_and_label_it(tmp_path: Path) -> None:
    store = MemoryStore.open(tmp_path / "memory.db")
    app, _ = make_app(ScriptedBackend(["first answer", "second answer", "third"]), store=store)
    async with app.run_test(size=(120, 36)) as pilot:
        await _chat(pilot, app, "a question")
        cid = app.chat.conversation_id
        assert cid is not None
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert shown(app) == [("user", "a question"), ("assistant", "second answer")]
        assert titles(app)[-1] == "Assistant (scripted) · version 2/2"
        await type_and_send(pilot, "/regen")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "third")
        assert titles(app)[-1].endswith("version 3/3")
        reply = store.messages(cid)[-1]
        assert [v.message.content for v in store.versions(reply.id)] == [
            "first answer",
            "second answer",
            "third",
        ]
        assert [m.role for m in store.messages(cid)] == ["user", "assistant"]


async def test_versions_are_browsed_with_keys_and_versions_n() -> None:
    app, store = make_app(ScriptedBackend(["one", "two"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await _chat(pilot, app, "q")
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        cid = app.chat.conversation_id
        assert cid is not None
        await pilot.press("alt+left")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "one")
        assert titles(app)[-1].endswith("version 1/2")
        assert store.messages(cid)[-1].content == "one"
        await pilot.press("alt+left")  # no older one: says where it is
        await settle(app, pilot)
        assert "this is version 1/2" in notes(app)
        await type_and_send(pilot, "/versions 2")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "two")
        await type_and_send(pilot, "/versions")
        await settle(app, pilot)
        listing = [v.text for v in app.query(ChatMessageView) if v.role == "note"][-1]
        assert "1. one" in listing and "2. two **(shown)**" in listing
        await type_and_send(pilot, "/versions 7")
        await settle(app, pilot)
        assert "usage: /versions N, N from 1 to 2" in notes(app)
        assert app.query_one(PromptInput).text == "/versions 7"  # refused: kept to fix


async def test_edit_opens_the_editor_and_resends_as_a_branch() -> None:
    backend = ScriptedBackend(["about cats", "about dogs", "about birds"])
    app, store = make_app(backend)
    async with app.run_test(size=(120, 36)) as pilot:
        await _chat(pilot, app, "tell me about cats")
        cid = app.chat.conversation_id
        assert cid is not None
        old = store.messages(cid)
        await type_and_send(pilot, "/edit")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, EditTextScreen)
        assert editor.text == "tell me about cats"
        editor.dismiss("tell me about dogs")
        await settle(app, pilot)
        assert shown(app) == [("user", "tell me about dogs"), ("assistant", "about dogs")]
        assert backend.calls[-1][0][-1] == {"role": "user", "content": "tell me about dogs"}
        archived = {m.id for m, _ in store.archived_messages(cid)}
        assert archived == {m.id for m in old}
        # /edit TEXT resends at once; the first question is still a version.
        await type_and_send(pilot, "/edit tell me about birds")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "about birds")
        first_question = store.versions(store.messages(cid)[0].id)
        assert [v.message.content for v in first_question] == [
            "tell me about cats",
            "tell me about dogs",
            "tell me about birds",
        ]
        user_titles = [str(v.border_title) for v in app.query(ChatMessageView) if v.role == "user"]
        assert user_titles == ["You · version 3/3"]
        await type_and_send(pilot, "/versions")
        await settle(app, pilot)
        listing = [v.text for v in app.query(ChatMessageView) if v.role == "note"][-1]
        assert "**Versions of your last message** (3)" in listing
        assert "3. tell me about birds **(shown)**" in listing
        # Alt+Up goes back one branch: the dogs question with its own reply.
        await pilot.press("alt+up")
        await settle(app, pilot)
        assert shown(app) == [("user", "tell me about dogs"), ("assistant", "about dogs")]
        await type_and_send(pilot, "/versions message 1")
        await settle(app, pilot)
        assert shown(app) == [("user", "tell me about cats"), ("assistant", "about cats")]
        assert [m.content for m in store.messages(cid)] == ["tell me about cats", "about cats"]
        await pilot.press("alt+up")
        await settle(app, pilot)
        assert "this is version 1/3" in notes(app)


async def test_copy_copies_the_last_reply_or_message_n() -> None:
    app, _ = make_app(ScriptedBackend(["the answer is 42"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await _chat(pilot, app, "what is it?")
        await type_and_send(pilot, "/copy")
        await pilot.pause()
        assert app.clipboard == "the answer is 42"
        assert any(n.startswith("copied the reply 2 (16 characters)") for n in notes(app))
        await type_and_send(pilot, "/copy 1")
        await pilot.pause()
        assert app.clipboard == "what is it?"
        await type_and_send(pilot, "/copy 3")
        await pilot.pause()
        assert "usage: /copy N, N from 1 to 2 (the messages from the top)" in notes(app)
        assert app.clipboard == "what is it?"


async def test_good_and_bad_rate_the_last_reply_with_a_marker() -> None:
    app, store = make_app(ScriptedBackend(["meh", "great"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await _chat(pilot, app, "q", "/bad")
        cid = app.chat.conversation_id
        assert cid is not None
        first = store.messages(cid)[-1]
        assert store.ratings_of(cid) == {first.id: -1}
        assert titles(app)[-1].endswith("rated bad")
        assert any("/train lets training use it" in n for n in notes(app))
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        await type_and_send(pilot, "/good")
        await settle(app, pilot)
        second = store.messages(cid)[-1]
        assert store.ratings_of(cid) == {first.id: -1, second.id: 1}
        assert titles(app)[-1].endswith("version 2/2 · rated good")
        await type_and_send(pilot, "/train")
        await settle(app, pilot)
        [pair] = preference_pairs(store)
        assert (pair.chosen, pair.rejected, pair.source) == ("great", "meh", "ratings")
        await type_and_send(pilot, "/good")  # again: cleared
        await settle(app, pilot)
        assert store.ratings_of(cid) == {first.id: -1}
        assert not titles(app)[-1].endswith("rated good")


async def test_commands_with_nothing_to_act_on_say_so() -> None:
    app, _ = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        for command in ("/regen", "/edit", "/versions", "/copy", "/good"):
            app.query_one(PromptInput).clear()  # a refused command stays in the box
            await type_and_send(pilot, command)
            await pilot.pause()
        said = notes(app)
        assert "nothing to regenerate: say something first" in said
        assert "nothing to edit: say something first" in said
        assert "no reply yet" in said and "nothing to copy yet" in said
        assert "no reply to rate yet" in said


async def test_regenerate_waits_for_a_reply_being_written() -> None:
    app, store = make_app(ScriptedBackend(["one two three four five six"], delay_s=0.2))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "q")
        await pilot.pause(0.1)
        assert app.chat.live is not None
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "a reply is being written; press Esc to stop it" in notes(app)
        await settle(app, pilot)
        cid = app.chat.conversation_id
        assert cid is not None
        assert list(store.archived_messages(cid)) == []


async def test_help_lists_the_version_commands_and_keys() -> None:
    app, _ = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 36)) as pilot:
        await _chat(pilot, app, "/help")
        text = [v.text for v in app.query(ChatMessageView) if v.role == "note"][-1]
        for usage in ("/regen", "/edit [TEXT]", "/versions [message] [N]", "/copy [N]", "/good"):
            assert f"`{usage}`" in text
        assert "Ctrl+R" in text and "Alt+Left" in text
