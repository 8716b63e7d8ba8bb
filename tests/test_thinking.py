"""Reasoning models' <think> blocks: split from the answer as they stream, stored apart,
kept out of later prompts and summaries; `ask` hides them unless asked."""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from assistant.backends.base import ChatMessage, Done, Event, GenerationOptions, Token
from assistant.backends.llama_local import LlamaCppBackend
from assistant.backends.scripted import ScriptedBackend
from assistant.memory.migrations import migrations
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore
from assistant.memory.summarize import summarize
from assistant.thinking import (
    Thinking,
    ThinkSplitter,
    prompt_opens_thinking,
    separate_thinking,
    split_thinking,
    template_thinks,
)

# -- the splitter --------------------------------------------------------------------

CASES = [
    # (text, opened, reasoning, answer)
    ("<think>2+2 is 4</think>\n\nFour.", False, "2+2 is 4", "Four."),
    ("Plain answer, no tags.", False, "", "Plain answer, no tags."),
    ("  \n<think>\nhmm\n</think>\nYes.", False, "hmm", "Yes."),
    ("<think>cut off at max_tokens", False, "cut off at max_tokens", ""),
    ("<think>", False, "", ""),
    ("Before. <think>x</think>After.", False, "x", "Before. After."),
    # The template opened the block in the prompt (R1 distills, QwQ).
    ("mid-thought</think>\n\nThe answer.", True, "mid-thought", "The answer."),
    ("still thinking", True, "still thinking", ""),
    ("<think>again</think>ok", True, "again", "ok"),
    # ... and nobody said so: a lone </think> moves what came before into the reasoning.
    ("mid-thought</think>\n\nThe answer.", False, "mid-thought", "The answer."),
    # After a block, tags are plain text.
    ("<think>a</think>b</think>c", False, "a", "b</think>c"),
    ("<think>a <think> b</think>c", False, "a <think> b", "c"),
    ("<thinking>not a tag</thinking>", False, "", "<thinking>not a tag</thinking>"),
    ("<think>one</think>mid<think>two</think>end", False, "onetwo", "midend"),
]


@pytest.mark.parametrize(("text", "opened", "reasoning", "answer"), CASES)
def test_split_thinking_table(text: str, opened: bool, reasoning: str, answer: str) -> None:
    assert split_thinking(text, opened) == (reasoning, answer)


def _run(chunks: Sequence[str], opened: bool) -> tuple[str, str, ThinkSplitter]:
    """Feed chunks; rebuild reasoning and answer from what was emitted, as a viewer would."""
    splitter = ThinkSplitter(opened)
    thinking, answer = "", ""
    for piece in [p for c in chunks for p in splitter.feed(c)] + splitter.close():
        kind, text = piece
        if kind == "answer":
            answer += text
        elif kind == "thinking":
            thinking += text
        else:  # moved: the answer so far was reasoning
            assert text == answer
            thinking, answer = thinking + text, ""
    return thinking, answer, splitter


_ALPHABET = st.sampled_from(
    ["<think>", "</think>", "<", "/", "think", ">", "<thi", "nk>", "a", "b", " ", "\n"]
)


@given(st.lists(_ALPHABET, max_size=30).map("".join), st.data(), st.booleans())
def test_any_chunking_gives_the_same_result(text: str, data: st.DataObject, opened: bool) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=12)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    whole = _run([text], opened)
    pieces = _run(chunks, opened)
    assert pieces[:2] == whole[:2]
    # What was emitted is what the splitter counted; no tag text leaks into the answer
    # unless the answer really has it as text after a block.
    assert (pieces[2].thinking, pieces[2].answer) == pieces[:2]
    if "<think>" not in text and "</think>" not in text and not opened:
        assert whole[:2] == ("", text)  # no tags: the text comes out unchanged


def test_prompt_opens_thinking() -> None:
    assert prompt_opens_thinking("<|Assistant|><think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n")
    assert not prompt_opens_thinking("<think>\n\n</think>\n\n")  # thinking turned off


def test_separate_thinking_flushes_what_it_held_before_done() -> None:
    events = list(ScriptedBackend(["<think>x</think>answer <"]).stream([], GenerationOptions()))
    out = list(separate_thinking(events))
    assert [e for e in out if isinstance(e, Thinking)] == [Thinking("x")]
    assert "".join(e.text for e in out if isinstance(e, Token)) == "answer <"
    assert isinstance(out[-1], Done)


def test_a_final_answer_that_replaces_the_stream_loses_its_think_block() -> None:
    from assistant.memory.reply import FinalText

    out = list(separate_thinking([FinalText("<think>plan</think> 42", ["step"])]))
    assert out == [Thinking("plan"), FinalText("42", ["step"])]
    streamed = [Token("<think>plan</think>"), FinalText("<think>plan</think> 42")]
    assert list(separate_thinking(streamed)) == [Thinking("plan"), FinalText("42")]


# -- a conversation with a reasoning model ---------------------------------------------


class OpeningBackend(ScriptedBackend):
    """A scripted model whose template opens the think block in the prompt."""

    def opens_thinking(self, messages: Sequence[ChatMessage]) -> bool:
        return True


class CharBackend(ScriptedBackend):
    """Streams its reply one character at a time (tags split across every token)."""

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        for event in super().stream(messages, options):
            if isinstance(event, Token):
                yield from (Token(ch) for ch in event.text)
            else:
                yield event


def test_session_stores_the_answer_and_keeps_reasoning_out_of_the_next_prompt() -> None:
    backend = CharBackend(["<think>The user greets me. Greet back.</think>\n\nHello!", "Fine."])
    store = MemoryStore.in_memory()
    session = ChatSession.create(store, backend, strategy="buffer")
    events = list(session.send("Hi"))
    thinking = "".join(e.text for e in events if isinstance(e, Thinking))
    assert thinking == "The user greets me. Greet back."
    assert "".join(e.text for e in events if isinstance(e, Token)) == "Hello!"
    reply = session.messages()[-1]
    assert (reply.content, reply.reasoning, reply.status) == (
        "Hello!",
        "The user greets me. Greet back.",
        "complete",
    )
    list(session.send("How are you?"))
    prompt = json.dumps(backend.calls[-1][0])
    assert "Hello!" in prompt
    assert "think" not in prompt and "Greet back" not in prompt
    assert session.messages()[-1].reasoning is None


def test_a_template_that_opens_the_block_streams_reasoning_from_the_first_token() -> None:
    backend = OpeningBackend(["Let me see. </think> It is 4."])
    session = ChatSession.create(MemoryStore.in_memory(), backend, strategy="buffer")
    events = list(session.send("2+2?"))
    assert not any(isinstance(e, Thinking) and e.moved for e in events)
    assert [type(e) for e in events[:3]] == [Thinking, Thinking, Thinking]
    reply = session.messages()[-1]
    assert (reply.content, reply.reasoning) == ("It is 4.", "Let me see.")


def test_a_lone_close_tag_moves_the_streamed_answer_into_the_reasoning() -> None:
    session = ChatSession.create(
        MemoryStore.in_memory(),
        ScriptedBackend(["Let me see. </think> It is 4."]),
        strategy="buffer",
    )
    events = list(session.send("2+2?"))
    [moved] = [e for e in events if isinstance(e, Thinking) and e.moved]
    assert moved.text == "Let me see. "
    reply = session.messages()[-1]
    assert (reply.content, reply.reasoning) == ("It is 4.", "Let me see.")


class PlainBackend(ScriptedBackend):
    """A scripted model whose template has no think block (as the bundled SmolLM2)."""

    def reasons(self) -> bool:
        return False


def test_a_model_that_never_reasons_keeps_a_stray_close_tag_as_answer_text() -> None:
    session = ChatSession.create(
        MemoryStore.in_memory(), PlainBackend(["Let me see. </think> It is 4."]), strategy="buffer"
    )
    events = list(session.send("2+2?"))
    assert not any(isinstance(e, Thinking) for e in events)
    reply = session.messages()[-1]
    assert (reply.content, reply.reasoning) == ("Let me see. </think> It is 4.", None)


def test_a_reply_stopped_mid_thought_keeps_its_reasoning() -> None:
    backend = ScriptedBackend(["<think>one two three four five six</think>never shown"])
    session = ChatSession.create(
        MemoryStore.in_memory(), backend, strategy="buffer", flush_tokens=1
    )
    stream = session.send("Think hard")
    for event in stream:
        if isinstance(event, Thinking) and "three" in event.text:
            break
    stream.close()
    reply = session.messages()[-1]
    assert reply.status == "interrupted" and reply.content == ""
    assert reply.reasoning == "one two three"


def test_summaries_never_keep_the_summarizers_own_reasoning() -> None:
    backend = ScriptedBackend(["<think>What did they say?</think>They greeted each other."])
    text = summarize(backend, None, [{"role": "user", "content": "hello"}])
    assert text == "They greeted each other."


def test_a_model_that_never_reasons_keeps_its_whole_summary() -> None:
    backend = PlainBackend(["They said hello. </think> Then goodbye."])
    text = summarize(backend, None, [{"role": "user", "content": "hello"}])
    assert text == "They said hello. </think> Then goodbye."


# DeepSeek-R1 distills' template names only the closing tag (to strip past reasoning).
R1_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{% set content = message['content'] %}{% if '</think>' in content %}"
    "{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{% endif %}{% endfor %}"
)


def test_which_templates_are_a_reasoning_models(smol_path: Path) -> None:
    from assistant.gguf_info import read_gguf_info

    assert template_thinks(R1_TEMPLATE)
    assert template_thinks("{{ '<think>\\n' }}")  # QwQ opens the block in the prompt
    assert template_thinks("")  # no template: nothing to go by
    assert not template_thinks(read_gguf_info(smol_path).chat_template or "")


def test_m005_adds_the_reasoning_column() -> None:
    db = Database(memory=True)
    migrations.apply(db)
    assert "reasoning" in db.table("messages").columns_dict
    assert "m005_message_reasoning" in {
        row["name"] for row in db.query("SELECT name FROM _sqlite_migrations")
    }


def test_real_model_turn_has_no_thinking(smol: LlamaCppBackend) -> None:
    """The bundled model has no think tags: its reply streams and is stored unchanged."""
    session = ChatSession.create(MemoryStore.in_memory(), smol, strategy="buffer")
    assert smol.opens_thinking([{"role": "user", "content": "Hi"}]) is False
    assert smol.reasons() is False  # its template has no <think>: a stray tag is text
    events = list(session.send("Say hello."))
    assert not any(isinstance(e, Thinking) for e in events)
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    reply = session.messages()[-1]
    assert streamed and reply.content == streamed and reply.reasoning is None


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def thinking_model(monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    backend = ScriptedBackend(["<think>Two plus two.</think> It is 4."])
    monkeypatch.setattr("assistant.engine.open_backend", lambda config, registry=None: backend)
    return backend


def test_ask_hides_thinking_unless_asked(thinking_model: ScriptedBackend, home: Path) -> None:
    from assistant.cli import cli

    runner = CliRunner()
    plain = runner.invoke(cli, ["ask", "2+2?"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.strip() == "It is 4." and "Two plus two" not in plain.stderr
    thinking_model.enqueue("<think>Two plus two.</think> It is 4.")
    shown = runner.invoke(cli, ["ask", "--show-thinking", "2+2?"], color=True)
    assert shown.stdout.strip() == "It is 4."
    assert "Two plus two." in click.unstyle(shown.stderr) and "\x1b[2m" in shown.stderr  # dim
    thinking_model.enqueue("<think>Two plus two.</think> It is 4.")
    data = json.loads(runner.invoke(cli, ["ask", "--json", "2+2?"]).stdout)
    assert (data["answer"], data["thinking"]) == ("It is 4.", "Two plus two.")


def test_ask_json_thinking_is_null_for_the_real_model(home: Path) -> None:
    from tests.test_cli import GREEDY, assistant

    result = assistant("ask", "--json", "--show-thinking", *GREEDY, "Say hi.", home=home)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["thinking"] is None and data["answer"]
