"""ChatSession: persistence while streaming, memory in the prompt, compaction by the model."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from assistant.backends.base import ChatMessage, Done, Event, GenerationOptions, Token
from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.memory.factory import open_session, open_store
from assistant.memory.session import ChatSession, parse_remember, with_recalled
from assistant.memory.store import MemoryStore
from assistant.memory.strategies import SUMMARY_HEADING


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(Database(memory=True))


def _reply(session: ChatSession, text: str) -> str:
    return "".join(e.text for e in session.send(text) if isinstance(e, Token))


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("Remember that my cat is called Tom.", "my cat is called Tom"),
        ("please remember: the wifi password is hunter2", "the wifi password is hunter2"),
        ("remember I like tea!", "I like tea"),
        ("Do you remember that?", None),
        ("I remember that day", None),
    ],
)
def test_parse_remember(text: str, fact: str | None) -> None:
    assert parse_remember(text) == fact


def test_user_message_is_committed_before_generation_and_reply_streams(
    store: MemoryStore,
) -> None:
    backend = ScriptedBackend(["one two three four five six"])
    session = ChatSession.create(store, backend, strategy="buffer", flush_tokens=2)
    seen = []
    for _event in session.send("hi there"):
        rows = session.messages()
        seen.append((rows[0].status, rows[1].status, rows[1].content))
    assert seen[0] == ("complete", "streaming", "")
    assert ("complete", "streaming", "one two") in seen
    user, reply = session.messages()
    assert (user.role, user.content) == ("user", "hi there")
    assert (reply.status, reply.content, reply.finish_reason) == (
        "complete",
        "one two three four five six",
        "stop",
    )
    assert reply.completion_tokens == 6 and reply.model == "scripted"
    assert backend.calls[0][1].conversation_id == session.conversation_id
    assert session.conversation.title == "hi there"


def test_closing_the_stream_keeps_the_partial_reply_as_interrupted(store: MemoryStore) -> None:
    session = ChatSession.create(store, ScriptedBackend(["a b c d e f"]), strategy="buffer")
    events = session.send("go")
    next(events), next(events)
    events.close()
    reply = session.messages()[-1]
    assert (reply.status, reply.content) == ("interrupted", "a b")


def test_backend_error_keeps_the_user_message(store: MemoryStore) -> None:
    session = ChatSession.create(store, ScriptedBackend([RuntimeError("boom")]), strategy="buffer")
    with pytest.raises(RuntimeError):
        list(session.send("hello"))
    user, reply = session.messages()
    assert (user.content, reply.status, reply.content) == ("hello", "interrupted", "")


def test_sending_the_same_text_after_an_error_answers_the_stored_message(
    store: MemoryStore,
) -> None:
    backend = ScriptedBackend([RuntimeError("boom"), "Hi!"])
    session = ChatSession.create(store, backend, strategy="buffer")
    with pytest.raises(RuntimeError):
        list(session.send("Remember that my cat is Tom. Hello"))
    list(session.send("Remember that my cat is Tom. Hello"))
    got = [(m.role, m.content, m.status) for m in session.messages()]
    assert got == [
        ("user", "Remember that my cat is Tom. Hello", "complete"),
        ("assistant", "Hi!", "complete"),
    ]
    assert len(store.facts()) == 1  # the fact was not remembered twice
    assert backend.calls[1][0][-1]["content"].endswith("Remember that my cat is Tom. Hello")


def test_a_different_text_after_an_error_is_a_new_turn(store: MemoryStore) -> None:
    session = ChatSession.create(
        store, ScriptedBackend([RuntimeError("boom"), "ok"]), strategy="buffer"
    )
    with pytest.raises(RuntimeError):
        list(session.send("first"))
    list(session.send("second"))
    assert [m.content for m in session.messages()] == ["first", "", "second", "ok"]


def test_a_stored_reply_is_never_replaced_by_sending_the_same_text(store: MemoryStore) -> None:
    session = ChatSession.create(store, ScriptedBackend(["one", "two"]), strategy="buffer")
    list(session.send("again"))
    list(session.send("again"))
    assert [m.content for m in session.messages()] == ["again", "one", "again", "two"]


def test_remember_stores_a_fact_and_recall_puts_it_in_later_prompts(store: MemoryStore) -> None:
    backend = ScriptedBackend(["Noted.", "Your cat is Tom."])
    session = ChatSession.create(store, backend, strategy="buffer")
    _reply(session, "Remember that my cat is called Tom.")
    fact = store.facts()[0]
    assert fact.content == "my cat is called Tom"
    _reply(session, "What is my cat called?")
    prompt = backend.calls[1][0]
    expected = with_recalled("What is my cat called?", store.search_facts("cat"))
    assert prompt[-1] == {"role": "user", "content": expected}
    assert "- my cat is called Tom" in prompt[-1]["content"]
    reply = session.messages()[-1]
    assert reply.memory["facts"] == [{"id": fact.id, "content": "my cat is called Tom"}]
    # The stored text stays what the user typed; later prompts repeat the recalled form.
    assert session.messages()[2].content == "What is my cat called?"
    _reply(session, "thanks")
    assert backend.calls[2][0][2] == prompt[-1]
    # The fact recalled two turns ago is still in this prompt, so this answer lists it.
    assert session.messages()[-1].memory["facts"] == [
        {"id": fact.id, "content": "my cat is called Tom"}
    ]


class SummarizingBackend(ScriptedBackend):
    """Answers summary requests with "summary N", everything else from the queue."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.summaries = 0

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        if messages[0]["content"].startswith("You summarize conversations."):
            self.summaries += 1
            self._replies.appendleft(f"summary {self.summaries}")
        return super().stream(messages, options)


def test_summary_strategy_asks_the_model_and_records_the_summary(store: MemoryStore) -> None:
    backend = SummarizingBackend(context_length=120)
    session = ChatSession.create(
        store,
        backend,
        strategy="summary",
        system_prompt="Be brief.",
        options=GenerationOptions(max_tokens=20),
        recall_limit=0,
    )
    for i in range(3):
        backend.enqueue(f"answer {i} " + "word " * 10)
        _reply(session, f"question {i} " + "filler " * 10)
    assert store.summaries() == []
    backend.enqueue("final answer")
    _reply(session, "question 3")
    # The history did not fit one summary request, so it was folded in chunks, each
    # request carrying the summary so far.
    summary_calls = [c for c in backend.calls if c[0][0]["content"].startswith("You summ")]
    assert len(summary_calls) == backend.summaries >= 2
    assert "question 0" in summary_calls[0][0][1]["content"]
    assert summary_calls[1][0][1]["content"].startswith("Summary so far:\nsummary 1\n")
    assert all(backend.count_prompt_tokens(c[0]) <= 120 - 25 for c in summary_calls)
    text = f"summary {backend.summaries}"
    summary = store.latest_summary(session.conversation_id)
    assert summary is not None and summary.content == text
    assert summary.through_seq == 5
    assert backend.calls[-1][0] == [
        {"role": "system", "content": f"Be brief.\n\n{SUMMARY_HEADING}\n{text}"},
        {"role": "user", "content": "question 3"},
    ]
    reply = session.messages()[-1]
    assert reply.summary_id == summary.id and reply.memory["summary_id"] == summary.id
    assert session.conversation.prompt_start_seq == 6
    # An edited summary is what the next prompt uses.
    store.edit_summary(summary.id, "Edited by the user.")
    backend.enqueue("ok")
    _reply(session, "next")
    assert backend.calls[-1][0][0]["content"].endswith("Edited by the user.")


def test_every_prompt_fits_with_the_fake_tokenizer(store: MemoryStore) -> None:
    for strategy in ("buffer", "window:3", "summary", "summary_buffer:40"):
        backend = ScriptedBackend(context_length=150)
        session = ChatSession.create(
            store, backend, strategy=strategy, options=GenerationOptions(max_tokens=30)
        )
        for i in range(60):
            backend.enqueue(" ".join(f"w{j}" for j in range(i % 25)))
            _reply(session, f"turn {i} " + "x " * (i % 9))
        assert all(backend.count_prompt_tokens(m) <= 150 - 30 for m, _ in backend.calls[:-1])
        assert len(session.messages()) == 120


def test_open_session_from_config(tmp_path: Path, home: Path) -> None:
    config = load_config({"memory_strategy": "window:2", "system_prompt": "S"})
    store = open_store(config)
    assert Path(store.db.conn.execute("PRAGMA database_list").fetchone()[2]) == home / "memory.db"
    backend = ScriptedBackend()
    session = open_session(config, store, backend)
    assert session.conversation.strategy == "window:2"
    assert session.conversation.system_prompt == "S"
    again = open_session(
        config, store, backend, conversation_id=session.conversation_id, strategy="summary"
    )
    assert again.conversation.strategy == "summary"
    with pytest.raises(ConfigError):
        open_session(config, store, backend, strategy="nope")
    events = list(again.send("hi"))
    assert isinstance(events[-1], Done)


class EmptySummaryBackend(ScriptedBackend):
    """Writes nothing when asked for a summary (as the 135M model does on some CPUs)."""

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        if messages[0]["content"].startswith("You summarize conversations."):
            self._replies.appendleft("")
        return super().stream(messages, options)


def test_an_empty_summary_is_retried_then_built_from_the_messages(store: MemoryStore) -> None:
    backend = EmptySummaryBackend(context_length=120)
    session = ChatSession.create(
        store, backend, strategy="summary", options=GenerationOptions(max_tokens=20),
        recall_limit=0,
    )  # fmt: skip
    for i in range(4):
        backend.enqueue(f"Answer {i}. More words " + "word " * 8)
        _reply(session, f"Question {i} about boats. " + "filler " * 10)
    summary_calls = [c for c in backend.calls if c[0][0]["content"].startswith("You summ")]
    # Asked greedily, then once more with sampling, before falling back.
    assert [c[1].temperature for c in summary_calls[:2]] == [0.0, 0.7]
    summary = store.latest_summary(session.conversation_id)
    assert summary is not None
    assert summary.content.startswith("User: Question 0 about boats.\nAssistant: Answer 0.")
