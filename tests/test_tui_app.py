"""The chat app, headless with Pilot: scripted backend and in-memory store for the flows."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.errors import ContextOverflowError
from assistant.memory.store import MemoryStore
from assistant.rag.index import Hit
from tui.app import ChatApp
from tui.widgets.context_bar import ContextBar
from tui.widgets.conversation_list import ConversationItem, ConversationList
from tui.widgets.message import ChatMessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.status_bar import StatusBar


async def wait_until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 10) -> None:
    """Let the app run until ``check()`` holds (fails the test after ``timeout``)."""
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached in time")


async def settle(app: ChatApp, pilot: Pilot[Any]) -> None:
    """Wait for every worker, then for the UI to process what they posted."""
    await app.workers.wait_for_complete()
    await pilot.pause()


def make_app(backend: ScriptedBackend | None = None, **kwargs: Any) -> tuple[ChatApp, MemoryStore]:
    store = kwargs.pop("store", None) or MemoryStore.in_memory()
    app = ChatApp(load_config(), backend=backend or ScriptedBackend(), store=store, **kwargs)
    return app, store


def shown(app: ChatApp) -> list[tuple[str, str]]:
    return [(v.role, v.text) for v in app.query(ChatMessageView)]


async def type_and_send(pilot: Pilot[Any], text: str) -> None:
    pilot.app.query_one(PromptInput).focus()
    await pilot.press(*text)
    await pilot.press("enter")


async def test_send_message_streams_reply_and_stores_both() -> None:
    app, store = make_app(ScriptedBackend(["Hello there, human."]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "Hi!")
        await settle(app, pilot)
        assert shown(app) == [("user", "Hi!"), ("assistant", "Hello there, human.")]
        assert app.query_one(PromptInput).text == ""
        [conversation] = store.conversations()
        assert [(m.role, m.content, m.status) for m in store.messages(conversation.id)] == [
            ("user", "Hi!", "complete"),
            ("assistant", "Hello there, human.", "complete"),
        ]
        assert conversation.title == "Hi!"
        status = app.query_one(StatusBar)
        assert status.tokens_per_s is not None and status.state == "ready"
        assert status.model == "scripted"


async def test_backend_receives_the_conversation_id() -> None:
    backend = ScriptedBackend(["one", "two"])
    app, store = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "first")
        await settle(app, pilot)
        await type_and_send(pilot, "second")
        await settle(app, pilot)
        [conversation] = store.conversations()
        assert [opts.conversation_id for _, opts in backend.calls] == [conversation.id] * 2
        # The second prompt holds the first exchange (memory through ChatSession).
        assert [m["content"] for m in backend.calls[1][0]] == ["first", "one", "second"]


async def test_shift_enter_and_ctrl_j_add_lines_enter_sends() -> None:
    backend = ScriptedBackend(["ok"])
    app, _ = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).focus()
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert app.query_one(PromptInput).text == "a\nb\nc"
        assert backend.calls == []
        await pilot.press("enter")
        await settle(app, pilot)
        assert backend.calls[0][0][-1]["content"] == "a\nb\nc"


async def test_up_recalls_earlier_prompts() -> None:
    app, _ = make_app(ScriptedBackend(["r1", "r2"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "first")
        await settle(app, pilot)
        await type_and_send(pilot, "second")
        await settle(app, pilot)
        box = app.query_one(PromptInput)
        await pilot.press("up")
        assert box.text == "second"
        await pilot.press("up")
        assert box.text == "first"
        await pilot.press("down")
        assert box.text == "second"


async def test_keybindings_are_configurable(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('keybindings = "send=ctrl+s; newline=enter; new=f5"\n')
    backend = ScriptedBackend(["ok"])
    app = ChatApp(load_config(), backend=backend, store=MemoryStore.in_memory())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).focus()
        await pilot.press("x", "enter", "y")
        assert app.query_one(PromptInput).text == "x\ny"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert backend.calls[0][0][-1]["content"] == "x\ny"
        await pilot.press("f5")
        assert app.chat.conversation_id is None and shown(app) == []


async def test_escape_stops_and_keeps_the_partial_reply_marked() -> None:
    words = " ".join(f"w{i}" for i in range(400))
    backend = ScriptedBackend([words], delay_s=0.01)
    app, store = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "talk")
        await wait_until(pilot, lambda: app.chat.live is not None and len(app.chat.live.parts) > 5)
        await pilot.press("escape")
        await settle(app, pilot)
        reply = list(app.query(ChatMessageView))[-1]
        assert reply.has_class("stopped") and reply.text.endswith("*[interrupted]*")
        [conversation] = store.conversations()
        stored = store.messages(conversation.id)[-1]
        assert stored.status == "interrupted"
        assert 5 < len(stored.content.split()) < 400
        assert reply.text.startswith(stored.content)
        assert app.query_one(StatusBar).state == "interrupted"  # the store's word for it


async def test_error_notifies_and_gives_the_typed_text_back() -> None:
    backend = ScriptedBackend([ContextOverflowError("too long; start a new conversation")])
    app, _ = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "a long question")
        await settle(app, pilot)
        reply = list(app.query(ChatMessageView))[-1]
        assert reply.has_class("error")
        assert app.chat.live is None
        assert app.query_one(PromptInput).text == "a long question"
        assert any("too long" in str(n.message) for n in app._notifications)


async def test_sending_again_after_an_error_asks_once() -> None:
    """The text given back after a failed turn is sent again: no duplicate question."""
    backend = ScriptedBackend([RuntimeError("the server went away"), "Now it works."])
    app, store = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "a question")
        await settle(app, pilot)
        assert app.query_one(PromptInput).text == "a question"
        await pilot.press("enter")  # the given-back text, unchanged
        await settle(app, pilot)
        assert shown(app) == [("user", "a question"), ("assistant", "Now it works.")]
        assert app.chat.conversation_id is not None
        stored = [(m.role, m.content, m.status) for m in store.messages(app.chat.conversation_id)]
        assert stored == [
            ("user", "a question", "complete"),
            ("assistant", "Now it works.", "complete"),
        ]


async def test_compare_answers_with_base_and_adapter_side_by_side() -> None:
    tuned = ScriptedBackend(["Arr, I be the adapter."])
    base = ScriptedBackend(["I am the base model."])
    store = MemoryStore.in_memory()
    config = dataclasses.replace(load_config(), adapter="pirate", temperature=0.0)
    app = ChatApp(
        config,
        backend=tuned,
        store=store,
        backend_factory=lambda c: base if c.adapter is None else tuned,
    )
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/compare Who are you?")
        await settle(app, pilot)
        answers = [v.text for v in app.query(".compare ChatMessageView")]
        assert [a.split("\n")[0] for a in answers] == [
            "I am the base model.",
            "Arr, I be the adapter.",
        ]
        assert (
            base.calls[0][0] == tuned.calls[0][0] == [{"role": "user", "content": "Who are you?"}]
        )
        assert base.calls[0][1].seed == tuned.calls[0][1].seed
        assert store.conversations() == []  # a comparison is not part of a conversation
        assert app.chat.status_bar.state == "ready" and not app.chat.comparing


async def test_a_failed_documents_turn_sent_again_is_asked_once() -> None:
    """Documents turns go through the session too: the question given back after a failed
    search is answered when sent again, not stored twice, and screen and store agree."""
    hits = [Hit("/notes/keys.md", None, 1, 1, "", 0.9, "The keys are in the drawer.", 0.8)]
    queries: list[str] = []

    def search(query: str) -> list[Hit]:
        queries.append(query)
        if len(queries) == 1:
            raise RuntimeError("index unavailable")
        return hits

    app, store = make_app(ScriptedBackend(["In the drawer [1]."]), doc_search=search)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/documents")
        await settle(app, pilot)
        await type_and_send(pilot, "where is it?")
        await settle(app, pilot)
        cid = app.chat.conversation_id
        assert cid is not None
        assert [(m.role, m.content) for m in store.messages(cid)] == [("user", "where is it?")]
        assert app.query_one(PromptInput).text == "where is it?"
        assert any("RuntimeError: index unavailable" in str(n.message) for n in app._notifications)
        await pilot.press("enter")  # the given-back text, unchanged
        await settle(app, pilot)
        expected = [("user", "where is it?"), ("assistant", "In the drawer [1].")]
        assert [(m.role, m.content) for m in store.messages(cid)] == expected
        assert shown(app) == expected
        assert queries == ["where is it?"] * 2


async def test_compare_waits_for_a_running_comparison() -> None:
    config = dataclasses.replace(load_config(), adapter="pirate")
    app = ChatApp(config, backend=ScriptedBackend(), store=MemoryStore.in_memory())
    async with app.run_test() as pilot:
        await settle(app, pilot)
        app.chat.comparison.running = True  # as while /compare's worker writes its answers
        await type_and_send(pilot, "/compare again")
        await settle(app, pilot)
        assert not app.query(".compare")
        assert any("wait for" in str(n.message) for n in app._notifications)


async def test_compare_without_an_adapter_says_what_to_do() -> None:
    app, _ = make_app(ScriptedBackend(["unused"]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/compare Who are you?")
        await settle(app, pilot)
        assert any("/adapter" in str(n.message) for n in app._notifications)
        assert app.query_one(PromptInput).text == "/compare Who are you?"  # kept to retry


async def test_train_marks_the_conversation_for_training() -> None:
    app, store = make_app(ScriptedBackend(["Sure."]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "hello")
        await settle(app, pilot)
        await type_and_send(pilot, "/train")
        await settle(app, pilot)
        assert app.chat.conversation_id is not None
        assert store.conversation(app.chat.conversation_id).marked_for_training
        await type_and_send(pilot, "/train")
        await settle(app, pilot)
        assert not store.conversation(app.chat.conversation_id).marked_for_training


async def test_sending_while_loading_keeps_the_text() -> None:
    gate = threading.Event()

    class SlowLoad(ScriptedBackend):
        def load(self) -> None:
            gate.wait(10)

    backend = SlowLoad(["unused"])
    app, _ = make_app(backend)
    async with app.run_test() as pilot:
        await pilot.pause()
        await type_and_send(pilot, "hello")
        await pilot.pause()
        assert app.query_one(PromptInput).text == "hello"
        assert any("still loading" in str(n.message) for n in app._notifications)
        assert backend.calls == []
        gate.set()
        await settle(app, pilot)


async def test_switching_conversations_keeps_a_reply_being_written() -> None:
    store = MemoryStore.in_memory()
    old = store.create_conversation(strategy="buffer", title="Old chat")
    store.add_message(old.id, "user", "earlier question")
    store.add_message(old.id, "assistant", "earlier answer")
    words = " ".join(f"w{i}" for i in range(120))
    backend = ScriptedBackend([words], delay_s=0.01)
    app, _ = make_app(backend, store=store)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        assert app.chat.conversation_id == old.id  # a start reopens the last conversation
        await pilot.press("ctrl+n")
        await type_and_send(pilot, "long one")
        await wait_until(pilot, lambda: app.chat.live is not None and len(app.chat.live.parts) > 3)
        new_id = app.chat.conversation_id
        app.chat.post_message(ConversationList.Selected(old.id))
        await wait_until(pilot, lambda: app.chat.conversation_id == old.id)
        assert shown(app) == [("user", "earlier question"), ("assistant", "earlier answer")]
        live = app.chat.live
        assert live is not None and live.view is None  # still generating, off screen
        app.chat.post_message(ConversationList.Selected(new_id))  # type: ignore[arg-type]
        await wait_until(pilot, lambda: app.chat.conversation_id == new_id)
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", words)
        assert store.messages(new_id)[-1].content == words  # type: ignore[arg-type]


async def test_sidebar_lists_switches_and_searches() -> None:
    store = MemoryStore.in_memory()
    a = store.create_conversation(strategy="buffer", title="Gardening")
    store.add_message(a.id, "user", "tomatoes need sun")
    b = store.create_conversation(strategy="buffer", title="Bikes")
    store.add_message(b.id, "user", "chain oil")
    app, _ = make_app(store=store)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        items = list(app.query(ConversationItem))
        assert {i.conversation_id for i in items} == {a.id, b.id}
        await pilot.click(f".conv-{a.id}")
        await wait_until(pilot, lambda: app.chat.conversation_id == a.id)
        assert shown(app) == [("user", "tomatoes need sun")]
        await pilot.click("#conv-search")
        await pilot.press(*"chain")
        await wait_until(pilot, lambda: len(list(app.query(ConversationItem))) == 1)
        assert [i.conversation_id for i in app.query(ConversationItem)] == [b.id]


async def test_rename_and_delete_with_confirm() -> None:
    store = MemoryStore.in_memory()
    c = store.create_conversation(strategy="buffer", title="Old title")
    store.add_message(c.id, "user", "hello")
    app, _ = make_app(store=store, conversation_id=c.id)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        assert app.chat.conversation_id == c.id
        await type_and_send(pilot, "/rename New title")
        await pilot.pause()
        assert store.conversation(c.id).title == "New title"
        await type_and_send(pilot, "/delete")
        await pilot.pause()
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert [x.id for x in store.conversations()] == [c.id]
        await type_and_send(pilot, "/delete")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert store.conversations() == []
        assert app.chat.conversation_id is None and shown(app) == []


async def test_system_prompt_per_conversation_reaches_the_model() -> None:
    backend = ScriptedBackend(["Arr."])
    app, store = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/system You are a pirate.")
        await settle(app, pilot)
        await type_and_send(pilot, "hello")
        await settle(app, pilot)
        assert backend.calls[0][0][0] == {"role": "system", "content": "You are a pirate."}
        assert store.conversations()[0].system_prompt == "You are a pirate."
        budget = app.query_one(ContextBar).budget
        assert budget is not None and budget.system == backend.count_prompt_tokens(
            [{"role": "system", "content": "You are a pirate."}]
        )


async def test_unknown_slash_command_keeps_the_text() -> None:
    app, _ = make_app()
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/nope")
        await pilot.pause()
        assert app.query_one(PromptInput).text == "/nope"
        assert any("/nope" in str(n.message) for n in app._notifications)


async def test_help_memory_and_export(home: Path) -> None:
    app, store = make_app(ScriptedBackend(["Noted."]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "remember that my cat is called Tom")
        await settle(app, pilot)
        await type_and_send(pilot, "/help")
        await pilot.pause()
        assert "/ingest PATH" in shown(app)[-1][1]
        await type_and_send(pilot, "/memory window:4")
        await pilot.pause()
        assert store.conversations()[0].strategy == "window:4"
        await type_and_send(pilot, "/memory")
        await pilot.pause()
        note = shown(app)[-1]
        assert note[0] == "note" and "my cat is called Tom" in note[1] and "window:4" in note[1]
        await type_and_send(pilot, "/export")
        await pilot.pause()
        exported = home / "exports" / f"{app.chat.conversation_id}.md"
        assert "Noted." in exported.read_text()


async def test_context_budget_counts_history_with_the_backend_tokenizer() -> None:
    backend = ScriptedBackend(["one two three"], context_length=1000)
    app, _ = make_app(backend)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "alpha beta")
        await settle(app, pilot)
        budget = app.query_one(ContextBar).budget
        assert budget is not None
        # 2 messages: (2 + 4) + (3 + 4) scripted tokens; reserve = min(max_tokens, ctx / 2).
        assert budget.history == 13
        assert budget.reserve == 500 and budget.context == 1000
        assert app.query_one(StatusBar).used == 13


async def test_model_switch_builds_a_new_backend_in_a_worker(home: Path) -> None:
    built: list[tuple[str, str | None]] = []

    def factory(config: Any) -> ScriptedBackend:
        built.append((config.model, config.adapter))
        return ScriptedBackend(model_name=f"fake-{config.model}")

    app, _ = make_app(backend_factory=factory)
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/model")
        await pilot.pause()
        await pilot.press("enter")  # the first entry: the bundled model
        await settle(app, pilot)
        assert built == [("smollm2-135m", None)]
        assert app.query_one(StatusBar).model == "fake-smollm2-135m"
        await type_and_send(pilot, "/adapter my-lora")
        await settle(app, pilot)
        assert built[-1] == ("smollm2-135m", "my-lora")
        assert app.config.adapter == "my-lora"


async def test_palette_lists_every_slash_command_with_help() -> None:
    from tui.commands import COMMANDS
    from tui.palette import SlashCommandProvider

    app, _ = make_app()
    async with app.run_test() as pilot:
        await settle(app, pilot)
        provider = SlashCommandProvider(app.screen)
        hits = [h async for h in provider.discover()]
        assert [h.display for h in hits] == [c.usage for c in COMMANDS]
        assert all(h.help for h in hits)
        ingest = next(h for h in hits if h.display == "/ingest PATH")
        ingest.command()  # needs an argument: goes to the prompt
        await pilot.pause()
        assert app.query_one(PromptInput).text == "/ingest "


async def test_startup_is_interactive_before_the_model_loads() -> None:
    """The prompt takes keys while a slow backend is still loading."""
    gate = threading.Event()

    class SlowLoad(ScriptedBackend):
        def load(self) -> None:
            import time

            while not gate.is_set():
                time.sleep(0.01)

    app, _ = make_app(SlowLoad())
    async with app.run_test() as pilot:
        await type_and_send(pilot, "hi")
        assert app.query_one(PromptInput).text == "hi"
        assert "loading" in app.query_one(StatusBar).state
        gate.set()
        await settle(app, pilot)
        assert app.query_one(StatusBar).state == "ready"


async def test_an_unexpected_error_is_a_notification_not_a_crash() -> None:
    app, _ = make_app(ScriptedBackend([RuntimeError("boom")]))
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "hello there")
        await settle(app, pilot)
        assert app.is_running
        assert app.query_one(PromptInput).text == "hello there"
        assert any("RuntimeError: boom" in str(n.message) for n in app._notifications)
