"""The app's /persona (saved templates) and its fold of a reasoning model's <think> text."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Collapsible

from assistant.backends.scripted import ScriptedBackend
from assistant.memory.conversation_settings import load_settings
from assistant.templates import Template, TemplateStore
from tests.test_tui_app import make_app, settle, shown, type_and_send
from tui.widgets.message import ChatMessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.thinking_fold import ThinkingFold


def _notes(app: object) -> list[str]:
    return [v.text for v in app.query(ChatMessageView) if v.role == "note"]  # type: ignore[attr-defined]


def _said(app: object) -> list[str]:
    return [str(n.message) for n in app._notifications]  # type: ignore[attr-defined]


async def test_persona_lists_applies_and_removes_a_template(home: Path) -> None:
    templates = TemplateStore.for_home(home)
    templates.save(
        Template("pirate", system="You are a pirate.", options={"temperature": 0.3, "top_k": 5})
    )
    templates.save(Template("librarian", system="You find things.", mode="documents"))
    backend = ScriptedBackend(["Arr.", "Arr again."])
    app, store = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/persona")
        await settle(app, pilot)
        [note] = [n for n in _notes(app) if "Personas" in n]
        assert "`pirate`: You are a pirate." in note and "`librarian`: You find things." in note

        await type_and_send(pilot, "/persona pirate")
        await settle(app, pilot)
        [conversation] = store.conversations()
        assert conversation.system_prompt == "You are a pirate."
        assert load_settings(store, conversation.id).values() == {"temperature": 0.3, "top_k": 5}
        assert any(
            "persona pirate: system prompt set; temperature 0.3; top_k 5" in s for s in _said(app)
        )

        await type_and_send(pilot, "Ahoy")
        await settle(app, pilot)
        messages, options = backend.calls[-1]
        assert messages[0] == {"role": "system", "content": "You are a pirate."}
        assert (options.temperature, options.top_k) == (0.3, 5)

        await type_and_send(pilot, "/persona ghost")
        await settle(app, pilot)
        assert any(
            "no template named 'ghost'; saved templates: librarian, pirate" in s for s in _said(app)
        )
        assert store.conversation(conversation.id).system_prompt == "You are a pirate."
        app.query_one(PromptInput).clear_text()  # a refused command's text is kept to fix

        await type_and_send(pilot, "/persona librarian")
        await settle(app, pilot)
        changed = store.conversation(conversation.id)
        assert (changed.system_prompt, changed.mode) == ("You find things.", "documents")
        assert load_settings(store, conversation.id).values() == {}  # the persona's, not merged

        await type_and_send(pilot, "/persona none")
        await settle(app, pilot)
        assert store.conversation(conversation.id).system_prompt is None


async def test_a_think_block_is_folded_above_the_reply_and_kept_out_of_it() -> None:
    backend = ScriptedBackend(
        ["<think>They greet me. [b]Greet[/b] back.</think>\n\nHello!", "Bye."]
    )
    app, store = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "Hi")
        await settle(app, pilot)
        assert shown(app)[-2:] == [("user", "Hi"), ("assistant", "Hello!")]
        [fold] = app.query(ThinkingFold)
        assert isinstance(fold, Collapsible) and fold.collapsed and fold.title == "Thinking…"
        assert fold.text == "They greet me. [b]Greet[/b] back."
        assert str(fold.body.render()) == fold.text  # shown as written, not as markup
        # The fold sits right above its reply; the user opens it.
        children = list(fold.parent.children)  # type: ignore[union-attr]
        assert isinstance(children[children.index(fold) + 1], ChatMessageView)
        fold.collapsed = False
        await pilot.pause()
        assert not fold.collapsed
        [conversation] = store.conversations()
        reply = store.messages(conversation.id)[-1]
        assert (reply.content, reply.reasoning) == ("Hello!", "They greet me. [b]Greet[/b] back.")

        # Shown again from the store: still folded; a reply without thinking has no fold.
        await type_and_send(pilot, "Bye")
        await settle(app, pilot)
        app.screen.show_conversation(None)  # type: ignore[attr-defined]
        await settle(app, pilot)
        assert not app.query(ThinkingFold)
        app.screen.show_conversation(conversation.id)  # type: ignore[attr-defined]
        await settle(app, pilot)
        [again] = app.query(ThinkingFold)
        assert again.collapsed and again.text == "They greet me. [b]Greet[/b] back."
        assert "think" not in str(backend.calls[-1][0])


async def test_a_lone_close_tag_moves_the_streamed_text_into_the_fold() -> None:
    """A template that opened the block in the prompt: what streamed first was reasoning."""
    backend = ScriptedBackend(["Let me see, two and two. </think> It is 4."], delay_s=0.01)
    app, store = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "2+2?")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "It is 4.")
        [fold] = app.query(ThinkingFold)
        assert fold.text == "Let me see, two and two."
        [conversation] = store.conversations()
        reply = store.messages(conversation.id)[-1]
        assert (reply.content, reply.reasoning) == ("It is 4.", "Let me see, two and two.")
