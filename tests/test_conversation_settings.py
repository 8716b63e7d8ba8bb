"""Per-conversation sampling settings: validated, stored in SQLite (m004), applied to turns."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import assistant.memory.conversation_settings as conversation_settings
from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.memory.conversation_settings import (
    ConversationSettings,
    apply_persona,
    load_settings,
    parse_setting,
    save_settings,
    update_settings,
)
from assistant.memory.store import MemoryStore
from assistant.services import Services
from tests.test_cli import assistant


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("temperature", "0.2", 0.2),
        ("temperature", "0", 0.0),
        ("temperature", 2, 2.0),
        ("top_p", "1", 1.0),
        ("top-p", "0.5", 0.5),
        ("top_k", "0", 0),
        ("top_k", "40", 40),
        ("seed", "7", 7),
        ("seed", 3.0, 3),
        ("max_tokens", "64", 64),
        ("max_tokens", "default", None),
        ("temperature", "reset", None),
        ("seed", None, None),
    ],
)
def test_parse_setting_accepts_good_values(name: str, raw: object, value: object) -> None:
    parsed = parse_setting(name, raw)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("temperature", "3", "temperature must be a number between 0 and 2"),
        ("temperature", "-0.1", "temperature must be a number between 0 and 2"),
        ("temperature", "hot", "temperature must be a number between 0 and 2"),
        ("temperature", "nan", "temperature must be a number between 0 and 2"),
        ("top_p", "1.5", "top_p must be a number between 0 and 1"),
        ("top_k", "-1", "top_k must be a whole number, 0 (off) or more"),
        ("top_k", "2.5", "top_k must be a whole number"),
        ("seed", "many", "seed must be a whole number from 0"),
        ("max_tokens", "0", "max_tokens must be a whole number of at least 1"),
        ("max_tokens", True, "max_tokens must be a whole number"),
        ("warmth", "1", "unknown setting 'warmth'; choose one of temperature, top_p, top_k"),
    ],
)
def test_parse_setting_refuses_bad_values_in_one_line(name: str, raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_setting(name, raw)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_settings_are_stored_per_conversation_in_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    store = MemoryStore.open(path)
    a = store.create_conversation(strategy="buffer").id
    b = store.create_conversation(strategy="buffer").id
    update_settings(store, a, {"temperature": "0.3", "seed": "9"})
    update_settings(store, a, {"seed": "default", "top_k": 20})
    with pytest.raises(ConfigError):  # nothing is changed by a bad value
        update_settings(store, a, {"top_p": "0.5", "temperature": "9"})
    store.close()
    reopened = MemoryStore.open(path)  # the migration ran once; the rows are on disk
    assert load_settings(reopened, a).values() == {"temperature": 0.3, "top_k": 20}
    assert load_settings(reopened, b) == ConversationSettings()
    assert load_settings(reopened, None) == ConversationSettings()
    reopened.delete_conversation(a)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM conversation_settings").fetchone() == (0,)
        applied = db.execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert ("m004_conversation_settings",) in applied


def test_a_persona_is_applied_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "memory.db"
    store = MemoryStore.open(path)
    cid = store.create_conversation(strategy="buffer").id
    apply_persona(store, cid, "You are a pirate.", ConversationSettings.from_mapping({"top_k": 5}))

    def dies_after_writing(*args: object) -> ConversationSettings:
        save_settings(*args)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # as a kill between the two writes and the commit

    monkeypatch.setattr(conversation_settings, "save_settings", dies_after_writing)
    with pytest.raises(KeyboardInterrupt):
        apply_persona(store, cid, "You are a librarian.", ConversationSettings())
    with sqlite3.connect(path) as db:  # another connection sees what is committed
        prompt = db.execute("SELECT system_prompt FROM conversations WHERE id = ?", [cid])
        assert prompt.fetchone() == ("You are a pirate.",)
    assert load_settings(store, cid).values() == {"top_k": 5}
    monkeypatch.undo()
    apply_persona(store, cid, None, ConversationSettings(), keep_prompt=True)
    assert store.conversation(cid).system_prompt == "You are a pirate."
    assert load_settings(store, cid) == ConversationSettings()


def test_a_conversations_settings_are_applied_to_its_turns_and_overrides_win(home: Path) -> None:
    backend = ScriptedBackend()
    config = load_config({"temperature": 0.7, "top_p": 0.9, "max_tokens": 100})
    services = Services(config, backend=backend, store=MemoryStore.in_memory())
    first = services.session()
    list(first.send("hello"))
    cid = first.conversation_id
    save_settings(services.store, cid, ConversationSettings(temperature=0.1, top_k=5, seed=3))
    list(services.session(cid).send("again"))
    list(services.session(cid, overrides={"temperature": 0.0}).send("once more"))
    list(services.session().send("a new conversation"))
    got = [(o.temperature, o.top_p, o.top_k, o.seed, o.max_tokens) for _, o in backend.calls]
    assert got == [
        (0.7, 0.9, None, None, 100),
        (0.1, 0.9, 5, 3, 100),
        (0.0, 0.9, 5, 3, 100),  # this call's explicit option over the stored one
        (0.7, 0.9, None, None, 100),
    ]


def test_a_stored_max_tokens_is_the_reply_reserve_and_cuts_the_reply(home: Path) -> None:
    backend = ScriptedBackend(["one two three four five six", "one two three four five six"])
    services = Services(load_config(), backend=backend, store=MemoryStore.in_memory())
    session = services.session()
    cid = session.conversation_id
    update_settings(services.store, cid, {"max_tokens": 3})
    session = services.session(cid)
    assert session.reply_reserve == 3
    list(session.send("count"))
    reply = session.messages()[-1]
    assert (reply.content, reply.finish_reason) == ("one two three", "length")


def test_ask_continue_and_history_send_honour_the_stored_settings(home: Path) -> None:
    """The real bundled model: a conversation whose max_tokens is 2 gets 2-token replies
    from `ask -c` and `history send`, unless `ask -o max_tokens` says otherwise."""
    base = ("--temperature", "0", "--threads", "1")
    first = assistant("ask", "--json", *base, "--max-tokens", "8", "Tell me a story.", home=home)
    assert first.returncode == 0, first.stderr
    cid = json.loads(first.stdout)["conversation_id"]
    store = MemoryStore.open(home / "memory.db")
    update_settings(store, cid, {"max_tokens": 2})
    store.close()
    again = assistant("ask", "--json", *base, "-c", "Tell me a longer one.", home=home)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["conversation_id"] == cid
    assert (data["usage"]["completion_tokens"], data["finish_reason"]) == (2, "length")
    wider = assistant("ask", "--json", *base, "-c", "-o", "max_tokens", "5", "More.", home=home)
    widened = json.loads(wider.stdout)
    assert widened["usage"]["completion_tokens"] <= 5
    assert (widened["finish_reason"], widened["usage"]["completion_tokens"]) != ("length", 2)
    sent = assistant("history", "send", "--json", "-c", cid, "--threads", "1", "More.", home=home)
    assert sent.returncode == 0, sent.stderr
    with sqlite3.connect(home / "memory.db") as db:
        last = db.execute(
            "SELECT completion_tokens, finish_reason FROM messages WHERE conversation_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            [cid],
        ).fetchone()
    assert last == (2, "length")


def test_ask_refuses_an_out_of_range_option_in_one_line(home: Path) -> None:
    result = assistant("ask", "-o", "temperature", "5", "hi", home=home)
    assert result.returncode != 0
    assert "temperature must be a number between 0 and 2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
