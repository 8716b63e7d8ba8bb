"""Regenerate, edit and switch versions; ratings and preference pairs (real SQLite files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.base import Token
from assistant.backends.llama_local import LlamaCppBackend
from assistant.backends.scripted import ScriptedBackend
from assistant.errors import AssistantError, ContextOverflowError
from assistant.memory.facts import MemoryNotFoundError
from assistant.memory.preferences import add_pair, preference_pairs, rate
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore
from assistant.memory.versions import VersionError


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore.open(tmp_path / "memory.db")


def _run(events: object) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))  # type: ignore[attr-defined]


def _path(session: ChatSession) -> list[tuple[int, int, str, str]]:
    return [(m.id, m.seq, m.role, m.content) for m in session.messages()]


def _two_turns(store: MemoryStore, *replies: str) -> ChatSession:
    session = ChatSession.create(store, ScriptedBackend(list(replies)), strategy="buffer")
    _run(session.send("first question"))
    _run(session.send("second question"))
    return session


def test_regenerate_keeps_the_old_reply_as_an_older_version(store: MemoryStore) -> None:
    session = _two_turns(store, "one", "two", "three")
    old = session.messages()[-1]
    assert _run(session.regenerate()) == "three"
    path = _path(session)
    assert [p[1] for p in path] == [0, 1, 2, 3]  # still linear
    new = session.messages()[-1]
    assert (new.role, new.content, new.status) == ("assistant", "three", "complete")
    assert new.id > old.id  # ids are never reused
    versions = store.versions(new.id)
    assert [(v.message.id, v.number, v.total, v.active) for v in versions] == [
        (old.id, 1, 2, False),
        (new.id, 2, 2, True),
    ]
    assert versions[0].message.content == "two"
    assert store.version_counts(session.conversation_id) == {new.id: (2, 2)}
    # The regenerated prompt ended with the same user message, without the old reply.
    prompt = session.backend.calls[-1][0]  # type: ignore[attr-defined]
    assert prompt[-1] == {"role": "user", "content": "second question"}
    assert all(m["content"] != "two" for m in prompt)


def test_switching_makes_an_older_version_active_again(tmp_path: Path) -> None:
    store = MemoryStore.open(tmp_path / "memory.db")
    session = _two_turns(store, "one", "two", "three")
    old = session.messages()[-1]
    _run(session.regenerate())
    new = session.messages()[-1]
    store.close()
    store = MemoryStore.open(tmp_path / "memory.db")  # versions live in the file
    assert store.activate_version(old.id).content == "two"
    active = store.messages(session.conversation_id)
    assert [(m.id, m.content) for m in active][-1] == (old.id, "two")
    assert [v.active for v in store.versions(old.id)] == [True, False]
    store.activate_version(new.id)
    assert store.messages(session.conversation_id)[-1].id == new.id


def test_edit_archives_the_message_and_everything_after_it_as_a_branch(
    store: MemoryStore,
) -> None:
    session = ChatSession.create(
        store, ScriptedBackend(["a", "b", "c", "edited answer"]), strategy="buffer"
    )
    for text in ("q one", "q two", "q three"):
        _run(session.send(text))
    before = _path(session)
    second_question = session.messages()[2]
    _run(session.edit(second_question.id, "q two, better"))
    after = _path(session)
    assert after[:2] == before[:2]
    assert [(seq, role, text) for _, seq, role, text in after[2:]] == [
        (2, "user", "q two, better"),
        (3, "assistant", "edited answer"),
    ]
    archived = {
        m.id: (m.seq, m.content) for m, _ in store.archived_messages(session.conversation_id)
    }
    assert archived == {i: (seq, text) for i, seq, _, text in before[2:]}
    # The edited message's versions: the old one (archived) and the new one.
    versions = store.versions(session.messages()[2].id)
    assert [(v.message.content, v.active) for v in versions] == [
        ("q two", False),
        ("q two, better", True),
    ]
    # Switching back to the old question brings back the whole old branch.
    store.activate_version(second_question.id)
    assert _path(session) == before


def test_switching_to_a_reply_inside_an_older_branch_brings_back_its_start(
    store: MemoryStore,
) -> None:
    session = _two_turns(store, "one", "two", "two again", "edited")
    _run(session.regenerate())  # the second reply now has two versions
    first_version = store.versions(session.messages()[-1].id)[0].message
    _run(session.edit(session.messages()[2].id, "another second question"))
    store.activate_version(first_version.id)  # its parent is in the archived branch
    assert [m.content for m in session.messages()] == [
        "first question",
        "one",
        "second question",
        "two",
    ]


def test_summaries_covering_the_replaced_part_are_dropped(store: MemoryStore) -> None:
    session = ChatSession.create(store, ScriptedBackend(["a", "b", "c", "d"]), strategy="buffer")
    for text in ("q one", "q two", "q three"):
        _run(session.send(text))
    cid = session.conversation_id
    early = store.add_summary(cid, "covers the first turn", 1)
    store.add_summary(cid, "covers two turns", 3)
    store.update_conversation(cid, prompt_start_seq=4)
    _run(session.edit(session.messages()[2].id, "q two edited"))
    assert [s.id for s in store.summaries(cid)] == [early.id]
    assert store.conversation(cid).prompt_start_seq == 2  # what the remaining summary covers
    # An edit before every summary leaves none, and the whole path in the prompt.
    _run(session.edit(session.messages()[0].id, "q one edited"))
    assert store.summaries(cid) == []
    assert store.conversation(cid).prompt_start_seq == 0


def test_an_empty_interrupted_reply_is_not_kept_as_a_version(store: MemoryStore) -> None:
    session = ChatSession.create(store, ScriptedBackend(["fine"]), strategy="buffer")
    user = store.add_message(session.conversation_id, "user", "hello")
    store.add_message(session.conversation_id, "assistant", "", status="interrupted")
    _run(session.regenerate())
    assert [(m.role, m.content) for m in session.messages()] == [
        ("user", "hello"),
        ("assistant", "fine"),
    ]
    assert list(store.archived_messages(session.conversation_id)) == []
    assert session.messages()[0].id == user.id


@pytest.mark.parametrize(
    ("which", "text", "error"),
    [
        (1, "new", "is not a user message"),
        (0, "   ", "is empty"),
        (99, "new", "no message has id 99"),
    ],
)
def test_bad_edits_change_nothing(store: MemoryStore, which: int, text: str, error: str) -> None:
    session = _two_turns(store, "one", "two")
    before = _path(session)
    message_id = session.messages()[which].id if which < 10 else which
    with pytest.raises(AssistantError, match=error):
        _run(session.edit(message_id, text))
    assert _path(session) == before
    assert list(store.archived_messages(session.conversation_id)) == []


def test_a_kill_while_an_edit_stores_its_message_leaves_the_old_branch_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "memory.db"
    store = MemoryStore.open(path)
    session = _two_turns(store, "one", "two", "edited answer")
    before = _path(session)
    real_add = store.add_message

    def dies_storing_the_edit(conversation_id: str, role: str, content: str, **kw: Any) -> Any:
        real_add(conversation_id, role, content, **kw)
        raise KeyboardInterrupt  # killed after the writes, before the commit

    monkeypatch.setattr(store, "add_message", dies_storing_the_edit)
    with pytest.raises(KeyboardInterrupt):
        _run(session.edit(session.messages()[2].id, "second question, better"))
    store.close()
    reopened = MemoryStore.open(path)  # what a restarted app reads
    again = ChatSession(reopened, ScriptedBackend(["edited answer"]), session.conversation_id)
    assert _path(again) == before
    assert list(reopened.archived_messages(session.conversation_id)) == []
    _run(again.edit(again.messages()[2].id, "second question, better"))
    assert [m.content for m in again.messages()][2:] == ["second question, better", "edited answer"]


def test_editing_an_older_version_or_another_conversation_is_refused(store: MemoryStore) -> None:
    session = _two_turns(store, "one", "two", "three")
    old_user = session.messages()[2]
    _run(session.edit(old_user.id, "edited"))
    with pytest.raises(VersionError, match="older version; switch to it first"):
        _run(session.edit(old_user.id, "again"))
    other = ChatSession.create(store, ScriptedBackend(["x"]), strategy="buffer")
    with pytest.raises(VersionError, match="belongs to conversation"):
        _run(other.edit(session.messages()[0].id, "mine"))


def test_too_long_an_edit_is_refused_before_anything_moves(store: MemoryStore) -> None:
    session = ChatSession.create(
        store, ScriptedBackend(["one"], context_length=64), strategy="buffer", reply_reserve=16
    )
    _run(session.send("short"))
    before = _path(session)
    with pytest.raises(ContextOverflowError):
        _run(session.edit(session.messages()[0].id, "word " * 100))
    assert _path(session) == before


def test_regenerate_with_nothing_to_answer_says_so(store: MemoryStore) -> None:
    session = ChatSession.create(store, ScriptedBackend([]), strategy="buffer")
    with pytest.raises(VersionError, match="nothing to regenerate"):
        _run(session.regenerate())


def test_delete_and_clear_forget_versions_and_ratings(store: MemoryStore) -> None:
    session = _two_turns(store, "one", "two", "three")
    _run(session.regenerate())
    rate(store, session.messages()[-1].id, 1)
    cid = session.conversation_id
    store.clear_messages(cid)
    assert list(store.archived_messages(cid)) == [] and store.ratings_of(cid) == {}
    session = _two_turns(store, "one", "two", "three")
    _run(session.regenerate())
    store.delete_conversation(session.conversation_id)
    count = store.db.execute("SELECT count(*) FROM message_versions").fetchone()[0]
    assert count == 0


# -- ratings and preference pairs --------------------------------------------------------


def test_rating_replies_only_and_clearing(store: MemoryStore) -> None:
    session = _two_turns(store, "one", "two")
    user, reply = session.messages()[0], session.messages()[1]
    rate(store, reply.id, 1)
    assert store.ratings_of(session.conversation_id) == {reply.id: 1}
    rate(store, reply.id, -1)
    assert store.ratings_of(session.conversation_id) == {reply.id: -1}
    rate(store, reply.id, 0)
    assert store.ratings_of(session.conversation_id) == {}
    with pytest.raises(AssistantError, match="only assistant replies are rated"):
        rate(store, user.id, 1)
    with pytest.raises(AssistantError, match="1 \\(up\\), -1 \\(down\\) or 0"):
        rate(store, reply.id, 5)
    with pytest.raises(MemoryNotFoundError):
        rate(store, 12345, 1)


def test_pairs_from_ratings_and_from_a_switched_to_version(store: MemoryStore) -> None:
    session = ChatSession.create(
        store,
        ScriptedBackend(["one", "two", "three", "four", "five"]),
        strategy="buffer",
        system_prompt="Be brief.",
    )
    _run(session.send("first question"))
    _run(session.send("second question"))
    cid = session.conversation_id
    store.update_conversation(cid, marked_for_training=1)
    assert preference_pairs(store) == []  # versions alone are no preference
    # The last reply: regenerated, the new one rated up.
    _run(session.regenerate())
    rate(store, session.messages()[-1].id, 1)
    pairs = preference_pairs(store)
    assert [(p.source, p.chosen, p.rejected) for p in pairs] == [("ratings", "three", "two")]
    assert pairs[0].prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second question"},
    ]
    assert (pairs[0].chosen_message_id, pairs[0].rejected_message_id) == (
        session.messages()[-1].id,
        store.versions(session.messages()[-1].id)[0].message.id,
    )
    # Editing the second question archives the rated versions: the pair stays.
    _run(session.edit(session.messages()[2].id, "second question, edited"))
    assert [(p.source, p.chosen) for p in preference_pairs(store)] == [("ratings", "three")]


def test_a_version_switched_to_is_chosen_over_the_other(store: MemoryStore) -> None:
    session = _two_turns(store, "one", "two", "three")
    old = session.messages()[-1]
    _run(session.regenerate())
    store.activate_version(old.id)  # the user preferred the first answer
    store.update_conversation(session.conversation_id, marked_for_training=1)
    pairs = preference_pairs(store)
    assert [(p.source, p.chosen, p.rejected) for p in pairs] == [("versions", "two", "three")]
    # A rating the other way round wins over the switch.
    rate(store, old.id, -1)
    assert [(p.source, p.chosen) for p in preference_pairs(store)] == [("ratings", "three")]


def test_only_marked_conversations_give_pairs_unless_asked(store: MemoryStore) -> None:
    session = _two_turns(store, "one", "two", "three")
    _run(session.regenerate())
    rate(store, session.messages()[-1].id, -1)
    pair_id = add_pair(
        store,
        session.conversation_id,
        [{"role": "user", "content": "pick one"}],
        "short answer",
        "long rambling answer",
    )
    assert pair_id > 0
    assert preference_pairs(store) == []
    everything = preference_pairs(store, marked_only=False)
    assert sorted((p.source, p.chosen) for p in everything) == [
        ("compare", "short answer"),
        ("ratings", "two"),
    ]
    compare = next(p for p in everything if p.source == "compare")
    assert compare.prompt == [{"role": "user", "content": "pick one"}]
    assert compare.chosen_message_id is None


@pytest.mark.parametrize(
    ("prompt", "chosen", "rejected", "error"),
    [
        ("not a list", "a", "b", "list of"),
        ([{"role": "user"}], "a", "b", "list of"),
        ([], "", "b", "neither empty"),
        ([], "same", "same", "the same text"),
    ],
)
def test_add_pair_refuses_bad_input(
    store: MemoryStore, prompt: object, chosen: str, rejected: str, error: str
) -> None:
    session = _two_turns(store, "one", "two")
    with pytest.raises(AssistantError, match=error):
        add_pair(store, session.conversation_id, prompt, chosen, rejected)  # type: ignore[arg-type]
    assert store.db.execute("SELECT count(*) FROM preference_pairs").fetchone()[0] == 0
    with pytest.raises(MemoryNotFoundError):
        add_pair(store, "nope", [], "a", "b")


# -- the real model ----------------------------------------------------------------------


def test_real_model_regenerate_and_edit_keep_every_version(
    store: MemoryStore, smol: LlamaCppBackend
) -> None:
    session = ChatSession.create(store, smol, strategy="buffer")
    _run(session.send("Name a colour."))
    first_reply = session.messages()[-1]
    assert first_reply.status == "complete" and first_reply.content
    _run(session.regenerate())
    second_reply = session.messages()[-1]
    assert second_reply.id != first_reply.id and second_reply.status == "complete"
    assert [v.message.id for v in store.versions(second_reply.id)] == [
        first_reply.id,
        second_reply.id,
    ]
    question = session.messages()[0]
    _run(session.edit(question.id, "Name a fruit."))
    path = session.messages()
    assert [(m.seq, m.role) for m in path] == [(0, "user"), (1, "assistant")]
    assert path[0].content == "Name a fruit." and path[1].content
    assert path[1].model == smol.model_name
    archived = sorted(m.id for m, _ in store.archived_messages(session.conversation_id))
    assert archived == sorted([question.id, first_reply.id, second_reply.id])


def test_an_edit_inside_a_summarized_part_drops_the_summary_and_the_next_prompt_rebuilds_it(
    store: MemoryStore,
) -> None:
    from assistant.backends.base import GenerationOptions
    from assistant.memory.strategies import SUMMARY_HEADING
    from tests.test_memory_session import SummarizingBackend

    backend = SummarizingBackend(context_length=120)
    session = ChatSession.create(
        store, backend, strategy="summary", options=GenerationOptions(max_tokens=20), recall_limit=0
    )
    for i in range(4):
        backend.enqueue(f"answer {i} " + "word " * 10)
        _run(session.send(f"question {i} " + "filler " * 10))
    cid = session.conversation_id
    assert store.summaries(cid) and session.conversation.prompt_start_seq > 2
    # Editing question 1 (seq 2): every summary covered it.
    backend.enqueue("edited answer")
    _run(session.edit(session.messages()[2].id, "question 1, edited"))
    assert store.summaries(cid) == []
    assert session.conversation.prompt_start_seq == 0
    prompt = backend.calls[-1][0]
    assert all(SUMMARY_HEADING not in m["content"] for m in prompt)
    assert [m["content"] for m in prompt][-1] == "question 1, edited"
    assert prompt[0]["content"].startswith("question 0")
    # Back to the old branch: it is whole again, and the next turn summarizes it anew.
    store.activate_version(store.versions(session.messages()[2].id)[0].message.id)
    assert len(session.messages()) == 8 and store.summaries(cid) == []
    backend.enqueue("last answer")
    _run(session.send("question 4"))
    summary = store.latest_summary(cid)
    assert summary is not None and summary.through_seq < session.messages()[-2].seq
    assert backend.calls[-1][0][0]["content"].startswith(SUMMARY_HEADING)


def test_export_and_import_keep_versions_ratings_choices_and_pairs(store: MemoryStore) -> None:
    from assistant.memory.transfer import export_json, import_json

    session = _two_turns(store, "one", "two", "three", "edited")
    old = session.messages()[-1]
    _run(session.regenerate())
    store.activate_version(old.id)  # a choice
    rate(store, old.id, 1)
    add_pair(store, session.conversation_id, [{"role": "user", "content": "p"}], "a", "b")
    _run(session.edit(session.messages()[2].id, "second, edited"))
    store.update_conversation(session.conversation_id, marked_for_training=1)
    data = json.loads(json.dumps(export_json(store, session.conversation_id)))
    copy = import_json(store, data, new_id="copy01")

    def summary(cid: str) -> tuple[Any, ...]:
        pairs = [p for p in preference_pairs(store) if p.conversation_id == cid]
        archived = sorted((m.seq, m.role, m.content) for m, _ in store.archived_messages(cid))
        return (
            [(m.role, m.content) for m in store.messages(cid)],
            archived,
            sorted(store.ratings_of(cid).values()),
            sorted((p.source, p.chosen, p.rejected, str(p.prompt)) for p in pairs),
        )

    assert summary(copy.id) == summary(session.conversation_id)
    assert len(summary(copy.id)[3]) == 2  # the rated pair and the explicit one
    # The copy's old branch switches back like the original's.
    old_question = store.versions(store.messages(copy.id)[2].id)[0].message
    store.activate_version(old_question.id)
    assert [m.content for m in store.messages(copy.id)] == [
        "first question", "one", "second question", "two",
    ]  # fmt: skip
    # An export without versions imports as before; a damaged versions part is refused.
    plain = _two_turns(store, "x", "y")
    assert "versions" not in export_json(store, plain.conversation_id)
    data["versions"]["archived"][0]["parent"] = {"version": 99}
    with pytest.raises(AssistantError, match="damaged conversation export"):
        import_json(store, data, new_id="copy02")
    # A version naming itself (or a later one) as its parent would make a cycle.
    data["versions"]["archived"][0]["parent"] = {"version": 0}
    with pytest.raises(AssistantError, match="damaged conversation export"):
        import_json(store, data, new_id="copy02")
    assert [c.id for c in store.conversations() if c.id == "copy02"] == []
