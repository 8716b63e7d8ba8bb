"""The app as a new user meets it (issue #14): status text, the prompt box, the display,
/help, first start and restart, /quit and /clear, /set and the theme. Pilot, a scripted
backend (or the real engine where the message comes from it) and real stores."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path
from typing import Any

from textual import constants, events
from textual.app import App
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Label, TextArea
from textual.widgets._markdown import MarkdownParagraph

import tui
from assistant.backends.scripted import ScriptedBackend
from assistant.config import Config, load_config
from assistant.errors import AssistantError, ModelNotFoundError
from assistant.memory.conversation_settings import load_settings
from assistant.memory.store import MemoryStore
from assistant.memory.transfer import export_markdown
from assistant.rag.index import Hit
from tests.test_tui_app import make_app, settle, shown, type_and_send, wait_until
from tui.app import ChatApp
from tui.app_state import state_path
from tui.commands import COMMANDS
from tui.help import key_display
from tui.screens.pick import PickScreen
from tui.widgets.conversation_list import ConversationItem
from tui.widgets.message import ChatMessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar
from tui.widgets.transcript import Transcript
from tui.widgets.welcome import WelcomeNote


def messages_of(app: ChatApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def command(pilot: Pilot[Any], text: str) -> None:
    await type_and_send(pilot, text)
    await pilot.pause()


# -- status text ------------------------------------------------------------------------


async def test_a_failed_model_switch_keeps_the_model_its_status_and_the_chat() -> None:
    def factory(config: Config) -> Any:
        raise ModelNotFoundError(f"no model named {config.model!r}")

    backend = ScriptedBackend(["still here"])
    app, _ = make_app(backend, backend_factory=factory)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/model x")
        await settle(app, pilot)
        status = app.query_one(StatusBar)
        assert (status.model, status.state) == ("scripted", "ready")
        assert any("no model named 'x' (still using scripted)" in m for m in messages_of(app))
        await type_and_send(pilot, "hello?")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "still here")


async def test_a_model_that_raises_anything_is_a_notification_not_a_crash() -> None:
    def factory(config: Config) -> Any:
        raise ValueError("bad magic")

    app, _ = make_app(ScriptedBackend(), backend_factory=factory)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/model broken")
        await settle(app, pilot)
        assert any("ValueError: bad magic" in m for m in messages_of(app))
        assert app.query_one(StatusBar).state == "ready"


async def test_ctrl_n_after_a_failed_reply_says_ready_not_error() -> None:
    app, _ = make_app(ScriptedBackend([AssistantError("the server went away")]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "hi")
        await settle(app, pilot)
        assert app.query_one(StatusBar).state == "error"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.query_one(StatusBar).state == "ready"


async def test_an_unknown_adapter_is_named_as_an_adapter(home: Path) -> None:
    """The real engine resolves the name (no model is loaded: the name fails first)."""
    app, _ = make_app(ScriptedBackend())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/adapter foo")
        await settle(app, pilot)
        found = [m for m in messages_of(app) if "foo" in m]
        assert found and found[0].startswith("no adapter named 'foo' (registered adapters: none)")
        assert "no model named" not in found[0]
        assert app.query_one(StatusBar).state == "ready"


async def test_the_adapter_picker_says_an_adapter() -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/adapter")
        await wait_until(pilot, lambda: isinstance(app.screen, PickScreen))
        assert isinstance(app.screen, PickScreen)
        assert app.screen.title_text == "Pick an adapter"


# -- the prompt box ---------------------------------------------------------------------


async def test_a_refused_command_stays_selected_so_the_next_one_replaces_it() -> None:
    app, store = make_app(ScriptedBackend(["ok"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        box = app.query_one(PromptInput)
        await command(pilot, "/memory bogus")
        assert box.text == "/memory bogus" and box.selected_text == "/memory bogus"
        await command(pilot, "/memory window:4")  # typed over the selection
        assert box.text == ""
        assert store.conversations()[0].strategy == "window:4"
        await command(pilot, "/nosuch")  # an unknown command too
        assert box.selected_text == "/nosuch"


async def test_ctrl_u_clears_the_whole_prompt() -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).focus()
        await pilot.press("a", "b", "ctrl+j", "c", "d")
        assert app.query_one(PromptInput).text == "ab\ncd"
        await pilot.press("ctrl+u")
        assert app.query_one(PromptInput).text == ""


async def test_a_huge_paste_scrolls_inside_the_prompt_and_leaves_the_chat_visible() -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        box = app.query_one(PromptInput)
        box.focus()
        app.post_message(events.Paste("a pasted line\n" * 400))  # to the focused box
        await pilot.pause()
        assert box.document.line_count == 401
        assert box.outer_size.height <= 10
        assert app.query_one(Transcript).size.height >= 10
        assert box.max_scroll_y > 0  # the rest scrolls inside the box


# -- display ----------------------------------------------------------------------------


async def test_a_multi_line_message_keeps_its_line_breaks() -> None:
    app, _ = make_app(ScriptedBackend(["ok"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).focus()
        await pilot.press(*"line one", "ctrl+j", *"line two", "ctrl+j", "ctrl+j", *"after")
        await pilot.press("enter")
        await settle(app, pilot)
        user = next(v for v in app.query(ChatMessageView) if v.role == "user")
        assert user.text == "line one\nline two\n\nafter"  # stored and copied as typed
        paragraphs = [p._content.plain for p in user.query(MarkdownParagraph)]
        assert paragraphs == ["line one\nline two", "after"]


async def test_angle_brackets_in_a_reply_are_shown_not_read_as_html() -> None:
    # A quoted man page: "set-url <name> <newurl>", streamed word by word.
    app, _ = make_app(ScriptedBackend(["Sets the URL of remote <name> to <newurl>."]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).focus()
        await pilot.press(*"hi", "enter")
        await settle(app, pilot)
        reply = next(v for v in app.query(ChatMessageView) if v.role == "assistant")
        paragraphs = [p._content.plain for p in reply.query(MarkdownParagraph)]
        assert paragraphs == ["Sets the URL of remote <name> to <newurl>."]


async def test_the_sidebar_shows_every_title_on_one_line() -> None:
    store = MemoryStore.in_memory()
    store.create_conversation(strategy="buffer", title="first line\nsecond   line")
    app, _ = make_app(ScriptedBackend(), store=store)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        [item] = app.query(ConversationItem)
        assert str(item.query_one(Label).render()) == "first line second line"
        assert app.chat.sub_title == "first line second line"


async def test_the_sources_panel_is_emptied_by_ctrl_n_and_by_switching() -> None:
    hits = [Hit("/notes/k.md", None, 1, 2, "Keys", 0.9, "The spare key is under the pot.", 0.8)]
    store = MemoryStore.in_memory()
    other = store.create_conversation(strategy="buffer", title="other")
    app, _ = make_app(
        ScriptedBackend(["Under the pot [1]."]), store=store, doc_search=lambda q: hits
    )
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await command(pilot, "/documents")
        await type_and_send(pilot, "Where is the spare key?")
        await settle(app, pilot)
        panel = app.query_one(SourcesPanel)
        assert panel.hits == hits and app.chat.turns.last_hits == hits
        asked = app.chat.conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert panel.hits == [] and app.chat.turns.last_hits == []
        app.chat.show_conversation(asked)
        app.chat.turns.show_sources(hits, [1])
        app.chat.show_conversation(other.id)
        assert panel.hits == []


async def test_messages_are_labelled_you_and_assistant_with_its_model() -> None:
    app, store = make_app(ScriptedBackend(["hello"], model_name="tiny-model"))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "hi")
        await settle(app, pilot)
        labels = [v.border_title for v in app.query(ChatMessageView)]
        assert labels == ["You", "Assistant (tiny-model)"]
        await pilot.press("ctrl+n")
        app.chat.show_conversation(store.conversations()[0].id)  # from the stored rows
        await pilot.pause()
        assert [v.border_title for v in app.query(ChatMessageView)] == labels


async def test_a_reply_cut_at_max_tokens_says_so_live_and_when_reopened() -> None:
    app, store = make_app(ScriptedBackend(["one two three four five six seven"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/set max_tokens 3")
        await type_and_send(pilot, "count")
        await settle(app, pilot)
        marker = "*… cut at max_tokens (3); raise it with `/set max_tokens 64`*"
        reply = shown(app)[-1]
        assert reply == ("assistant", "one two three\n\n" + marker)
        cid = app.chat.conversation_id
        assert store.messages(cid)[-1].content == "one two three"  # the marker is not stored
        await pilot.press("ctrl+n")
        app.chat.show_conversation(cid)
        await pilot.pause()
        assert shown(app)[-1] == reply


async def test_a_stopped_reply_is_interrupted_in_the_app_and_in_the_export() -> None:
    words = " ".join(f"w{i}" for i in range(400))
    app, store = make_app(ScriptedBackend([words], delay_s=0.01))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "talk")
        await wait_until(pilot, lambda: app.chat.live is not None and len(app.chat.live.parts) > 3)
        await pilot.press("escape")
        await settle(app, pilot)
        assert shown(app)[-1][1].endswith("*[interrupted]*")
        assert app.query_one(StatusBar).state == "interrupted"
        cid = app.chat.conversation_id
        assert cid is not None and store.messages(cid)[-1].status == "interrupted"
        assert "(interrupted)" in export_markdown(store, cid)


# -- /help ------------------------------------------------------------------------------


def _tui_classes_with_bindings() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(tui.__path__, "tui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name and cls.__dict__.get("BINDINGS"):
                found.append(cls)
    return found


async def test_help_lists_every_command_and_every_key() -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/help")
        role, note = shown(app)[-1]
        assert role == "note"
        assert set(app.chat.slash.handlers) == {c.name for c in COMMANDS}
        for c in COMMANDS:
            assert f"`{c.usage}`" in note, c.name
        keys = app.keys
        classes = _tui_classes_with_bindings()
        assert len(classes) >= 3  # the app, the chat screen, the sidebar at least
        for cls in classes:
            for item in cls.__dict__["BINDINGS"]:
                binding = item if isinstance(item, Binding) else Binding(*item)
                bound = keys.app.get(binding.id, binding.key) if binding.id else binding.key
                assert f"`{key_display(bound)}`" in note, (cls.__name__, binding.key)
        editing = [b for b in TextArea.BINDINGS if isinstance(b, Binding) and b.description]
        for binding in editing:
            assert binding.description.lower() in note, binding.key
        for key in ("Up", "Down", "Ctrl+P", "F2", "Del", "F7", "Ctrl+J", "Ctrl+U", "Esc"):
            assert f"`{key}" in note or f" {key}`" in note, key
        assert "`/export [PATH]`" in note and "Shift+Enter adds a line only" in note
        assert f"`{key_display(App.COMMAND_PALETTE_BINDING)}`" in note


# -- first start, restart, /quit, /clear -------------------------------------------------


async def test_the_first_start_welcomes_and_the_first_message_puts_it_away() -> None:
    app, _ = make_app(ScriptedBackend(["hi"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        [welcome] = app.query(WelcomeNote)
        text = welcome._markdown
        assert "`smollm2-135m`" in text and "mode: chat" in text and "/help" in text
        assert "`Shift+Enter / Ctrl+J` adds a line" in text and "`Ctrl+Q`" in text
        await type_and_send(pilot, "hello")
        await settle(app, pilot)
        assert not app.query(WelcomeNote)


async def test_a_restart_reopens_the_last_conversation(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    app, _ = make_app(
        ScriptedBackend(["first answer", "second answer"]), store=MemoryStore.open(path)
    )
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "first")
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await type_and_send(pilot, "second")
        await settle(app, pilot)
        last = app.chat.conversation_id
    again, _ = make_app(ScriptedBackend(), store=MemoryStore.open(path))
    async with again.run_test() as pilot:
        await settle(again, pilot)
        assert again.chat.conversation_id == last
        assert shown(again) == [("user", "second"), ("assistant", "second answer")]
        assert not again.query(WelcomeNote)


async def test_clear_starts_a_new_conversation_and_keeps_the_old_one() -> None:
    app, store = make_app(ScriptedBackend(["kept"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "keep me")
        await settle(app, pilot)
        old = app.chat.conversation_id
        await command(pilot, "/clear")
        assert app.chat.conversation_id is None and shown(app) == []
        assert old is not None and [m.content for m in store.messages(old)] == ["keep me", "kept"]


async def test_quit_exits_the_app() -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/quit")
        await wait_until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


# -- /set -------------------------------------------------------------------------------


async def test_set_changes_this_conversations_sampling_and_default_resets_it() -> None:
    backend = ScriptedBackend()
    config = load_config({"temperature": 0.7})
    store = MemoryStore.in_memory()
    app = ChatApp(config, backend=backend, store=store)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await command(pilot, "/set temperature 0.2")
        await command(pilot, "/set top_k 12")
        cid = app.chat.conversation_id
        assert cid is not None
        assert load_settings(store, cid).values() == {"temperature": 0.2, "top_k": 12}
        await command(pilot, "/set")
        note = shown(app)[-1][1]
        assert "`temperature` = 0.2" in note and "`top_k` = 12" in note
        assert "`top_p`: default (0.95)" in note
        await command(pilot, "/set temperature 5")
        assert any("temperature must be a number between 0 and 2" in m for m in messages_of(app))
        assert app.query_one(PromptInput).selected_text == "/set temperature 5"
        await command(pilot, "/set temperature")
        assert any(m.startswith("usage: /set NAME VALUE") for m in messages_of(app))
        await type_and_send(pilot, "one")
        await settle(app, pilot)
        await command(pilot, "/set temperature default")
        await type_and_send(pilot, "two")
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await type_and_send(pilot, "elsewhere")
        await settle(app, pilot)
    got = [(o.temperature, o.top_k) for _, o in backend.calls]
    assert got == [(0.2, 12), (0.7, 12), (0.7, None)]


# -- the theme --------------------------------------------------------------------------


async def test_the_theme_picked_is_used_again_on_the_next_start(home: Path) -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        assert app.theme != "nord"
        app.theme = "nord"  # what the palette's "Change theme" does
        await pilot.pause()
    assert json.loads(state_path(home).read_text())["theme"] == "nord"
    again, _ = make_app(ScriptedBackend())
    async with again.run_test() as pilot:
        await settle(again, pilot)
        assert again.theme == "nord"
    state_path(home).write_text("{not json")  # a broken file: the default theme, no crash
    third, _ = make_app(ScriptedBackend())
    async with third.run_test() as pilot:
        await settle(third, pilot)
        assert third.theme == constants.DEFAULT_THEME
