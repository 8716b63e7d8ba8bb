"""The turn owner's guarantees: nothing stored that cannot be answered, one turn at a time."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from assistant.backends.scripted import ScriptedBackend
from assistant.errors import ContextOverflowError
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore


def test_a_message_too_long_for_the_context_is_refused_before_it_is_stored() -> None:
    store = MemoryStore.in_memory()
    backend = ScriptedBackend(["hello there"], context_length=60)
    session = ChatSession.create(store, backend, strategy="summary_buffer", reply_reserve=10)
    with pytest.raises(ContextOverflowError, match="Nothing was stored"):
        list(session.send("word " * 200))
    assert store.messages(session.conversation_id) == []
    # The next message is answered at once, and no prompt or summary ever sees the long one.
    list(session.send("hi"))
    assert [m.content for m in session.messages()] == ["hi", "hello there"]
    assert all("word word" not in str(messages) for messages, _ in backend.calls)


REPLY_WORDS = 20


def _send(
    db: str,
    cid: str,
    name: str,
    streaming: multiprocessing.synchronize.Event,
) -> None:
    store = MemoryStore.open(Path(db))
    # A streams slowly and says when it has begun; B sends while A is answering.
    backend = ScriptedBackend(
        [f"reply to {name}" + " word" * REPLY_WORDS], delay_s=0.05 if name == "A" else 0.0
    )
    session = ChatSession(store, backend, cid)
    if name == "B":
        assert streaming.wait(60)
    for n, _ in enumerate(session.send(f"question {name}")):
        if name == "A" and n == 1:
            streaming.set()
    if name == "B":
        # B's prompt holds A's question only with A's whole reply after it.
        texts = [m["content"] for m in backend.calls[0][0]]
        assert texts[-3:] == ["question A", "reply to A" + " word" * REPLY_WORDS, "question B"]


def test_two_processes_sending_to_one_conversation_take_turns(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    store = MemoryStore.open(db)
    cid = ChatSession.create(store, ScriptedBackend(), strategy="buffer").conversation_id
    ctx = multiprocessing.get_context("spawn")
    streaming = ctx.Event()
    procs = [ctx.Process(target=_send, args=(str(db), cid, n, streaming)) for n in "AB"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    rows = [(m.role, m.content.split(" word")[0]) for m in store.messages(cid)]
    assert rows == [
        ("user", "question A"),
        ("assistant", "reply to A"),
        ("user", "question B"),
        ("assistant", "reply to B"),
    ]


def test_a_crash_between_message_and_fact_stores_neither(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The message and its fact are one transaction, so a resend stores both, once."""
    store = MemoryStore.in_memory()
    session = ChatSession.create(store, ScriptedBackend(["Noted.", "Noted."]), strategy="buffer")
    real_add_fact = store.add_fact

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # what a kill at that moment leaves behind

    monkeypatch.setattr(store, "add_fact", crash)
    with pytest.raises(KeyboardInterrupt):
        list(session.send("remember that my bike is a Brompton"))
    assert store.messages(session.conversation_id) == []
    monkeypatch.setattr(store, "add_fact", real_add_fact)
    list(session.send("remember that my bike is a Brompton"))
    assert [f.content for f in store.facts()] == ["my bike is a Brompton"]
    assert [m.role for m in session.messages()] == ["user", "assistant"]
