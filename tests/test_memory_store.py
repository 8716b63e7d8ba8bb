"""The memory store on real SQLite files: migrations, FTS ranking, export/import, LangChain."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from sqlite_utils import Database

from assistant.errors import AssistantError
from assistant.memory.lc import SQLiteChatMessageHistory
from assistant.memory.search import fts_query
from assistant.memory.store import MemoryNotFoundError, MemoryStore
from assistant.memory.tool import make_recall_tool
from assistant.memory.transfer import export_json, export_markdown, import_json


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore.open(tmp_path / "memory.db")


def test_migrations_create_schema_on_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "memory.db"
    store = MemoryStore.open(path)
    tables = set(store.db.table_names())
    assert {"conversations", "messages", "summaries", "facts"} <= tables
    assert {"messages_fts", "facts_fts", "summaries_fts"} <= tables
    assert store.db.journal_mode == "wal"
    applied = [r["name"] for r in store.db.query("SELECT name FROM _sqlite_migrations")]
    # Later migrations append; the first ones keep their names and order.
    assert applied[:3] == ["m001_initial", "m002_conversation_mode", "m003_versions_and_ratings"]
    store.close()
    again = MemoryStore.open(path)  # re-opening applies nothing twice
    assert [r["name"] for r in again.db.query("SELECT name FROM _sqlite_migrations")] == applied


def test_in_memory_database_works_too() -> None:
    store = MemoryStore(Database(memory=True))
    conv = store.create_conversation(strategy="buffer")
    store.add_message(conv.id, "user", "hello")
    assert [m.content for m in store.messages(conv.id)] == ["hello"]


def test_messages_get_consecutive_seq_and_prefix_lookup(store: MemoryStore) -> None:
    conv = store.create_conversation(strategy="buffer", conversation_id="abc123")
    for text in ("one", "two", "three"):
        store.add_message(conv.id, "user", text)
    assert [m.seq for m in store.messages(conv.id)] == [0, 1, 2]
    assert store.conversation("abc").id == "abc123"
    with pytest.raises(MemoryNotFoundError, match="history list"):
        store.conversation("zzz")
    with pytest.raises(AssistantError, match="already exists"):
        store.create_conversation(strategy="buffer", conversation_id="abc123")


def test_fts_query_ors_terms_and_quotes_syntax() -> None:
    assert fts_query("Where did we put the cat?") == '"put" OR "cat"'
    assert fts_query('cat AND "dog" NEAR(*') == '"cat" OR "dog" OR "near"'
    assert fts_query("what is it") == '"what" OR "is" OR "it"'
    assert fts_query("?!") is None


def test_search_ranks_natural_language_queries(store: MemoryStore) -> None:
    conv = store.create_conversation(strategy="buffer")
    texts = [
        "The weather in Paris is rainy today.",
        "My cat sleeps on the sofa every afternoon.",
        "Dogs are loyal animals.",
        "The cat chased a mouse.",
    ]
    ids = [store.add_message(conv.id, "user", t).id for t in texts]
    hits = store.search_messages("where does my cat like sleeping?")
    # OR, not AND: both cat messages match; the one that also matches "sleeping" ranks first.
    assert [h.id for h in hits] == [ids[1], ids[3]]
    assert hits[0].rank < hits[1].rank
    assert [h.id for h in store.search_messages("rainy dogs")] != []
    assert store.search_messages("quantum") == []
    assert store.search_messages('"unbalanced AND (') == []


def test_facts_add_edit_forget_and_recall(store: MemoryStore) -> None:
    fact = store.add_fact("  my name is Ada  ")
    other = store.add_fact("the project deadline is Friday")
    assert fact.content == "my name is Ada"
    assert [h.id for h in store.search_facts("what is my name?")] == [fact.id]
    store.edit_fact(fact.id, "my name is Ada Lovelace")
    assert store.fact(fact.id).content == "my name is Ada Lovelace"
    assert store.forget_fact(other.id).content == "the project deadline is Friday"
    assert [f.id for f in store.facts()] == [fact.id]
    assert store.search_facts("deadline") == []
    with pytest.raises(MemoryNotFoundError, match="memory list"):
        store.forget_fact(other.id)
    tool = make_recall_tool(store)
    assert "(fact) my name is Ada Lovelace" in tool("name")
    assert tool.__doc__ and "memory" in tool.__doc__


def _rich_conversation(store: MemoryStore) -> str:
    conv = store.create_conversation(
        strategy="summary_buffer:300", system_prompt="Be brief.", model="m", title="Trip"
    )
    store.add_message(conv.id, "user", "plan a trip to Rome", prompt_content="plan a trip (+f)")
    store.add_message(conv.id, "assistant", "Day 1: Colosseum.", model="m", prompt_tokens=40)
    summary = store.add_summary(conv.id, "They plan a Rome trip.", 1, model="m")
    store.edit_summary(summary.id, "They plan a trip to Rome in May.")
    store.add_message(conv.id, "user", "and day 2? ünïcode ✓")
    store.add_message(
        conv.id,
        "assistant",
        "Day 2: Vat",
        status="interrupted",
        summary_id=summary.id,
        memory={"summary_id": summary.id, "facts": [{"id": 7, "content": "likes art"}]},
        steps=[{"tool": "search", "input": "Vatican", "observation": "open 9-18"}],
        completion_tokens=3,
        cached_tokens=30,
    )
    store.update_conversation(conv.id, prompt_start_seq=2, marked_for_training=1)
    return conv.id


def test_export_import_round_trip_is_lossless(store: MemoryStore, tmp_path: Path) -> None:
    conversation_id = _rich_conversation(store)
    exported = export_json(store, conversation_id)
    other = MemoryStore.open(tmp_path / "other.db")
    imported = import_json(other, json.loads(json.dumps(exported)))
    assert imported.id == conversation_id
    assert export_json(other, conversation_id) == exported
    assert other.messages(conversation_id)[3].summary_id == other.summaries()[0].id
    # Into the same file: the id is taken unless a new one is given.
    with pytest.raises(AssistantError, match="already exists"):
        import_json(store, exported)
    copy = import_json(store, exported, new_id="copy1")
    again = export_json(store, copy.id)
    assert again["conversation"].pop("id") == "copy1"
    exported["conversation"].pop("id")
    assert again == exported
    with pytest.raises(AssistantError, match="not a conversation export"):
        import_json(store, {"format": "other"})


def test_markdown_export_reads_as_a_transcript(store: MemoryStore) -> None:
    conversation_id = _rich_conversation(store)
    text = export_markdown(store, conversation_id)
    assert text.startswith("# Trip\n")
    assert "## User\n\nplan a trip to Rome" in text
    assert "## Assistant _(interrupted)_\n\nDay 2: Vat" in text
    assert "## Summary\n\nThey plan a trip to Rome in May." in text


def test_langchain_history_over_a_conversation(store: MemoryStore) -> None:
    conv = store.create_conversation(strategy="buffer")
    history = SQLiteChatMessageHistory(store, conv.id)
    history.add_messages([SystemMessage("be nice"), HumanMessage("hi")])
    history.add_ai_message("hello!")
    messages = history.messages
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage, AIMessage]
    assert [m.content for m in messages] == ["be nice", "hi", "hello!"]
    assert [m.role for m in store.messages(conv.id)] == ["system", "user", "assistant"]
    history.clear()
    assert history.messages == []


def test_integrity_after_reopen(store: MemoryStore, tmp_path: Path) -> None:
    conversation_id = _rich_conversation(store)
    store.close()
    conn = sqlite3.connect(tmp_path / "memory.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = ?", [conversation_id]
    )
    assert rows.fetchone()[0] == 4


def test_in_memory_store_can_be_used_from_a_worker_thread() -> None:
    import threading

    store = MemoryStore.in_memory()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.add_fact("written by a worker")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors
    assert [f.content for f in store.facts()] == ["written by a worker"]
