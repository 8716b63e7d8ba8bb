"""``assistant history regenerate|edit|versions|switch|rate`` and the marks ``show`` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.memory.preferences import preference_pairs
from assistant.memory.store import MemoryStore


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code != 0, result.output
    return result.output


def _seed(home: Path) -> tuple[str, list[int]]:
    store = MemoryStore.open(home / "memory.db")
    conv = store.create_conversation(strategy="buffer", title="Colours")
    ids = [
        store.add_message(conv.id, "user", "Name a colour.").id,
        store.add_message(conv.id, "assistant", "Blue.").id,
    ]
    store.close()
    return conv.id, ids


@pytest.fixture
def real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MAX_TOKENS", "8")
    monkeypatch.setenv("ASSISTANT_N_THREADS", "1")
    monkeypatch.setenv("ASSISTANT_TEMPERATURE", "0")


def test_regenerate_edit_versions_switch_and_rate_on_the_real_model(
    home: Path, real_model: None
) -> None:
    cid, (question, blue) = _seed(home)
    regenerated = json.loads(run("history", "regenerate", cid[:6], "--json"))
    assert regenerated["status"] == "complete" and regenerated["versions"] == 2
    new_reply = regenerated["message_id"]
    listed = json.loads(run("history", "versions", str(blue), "--json"))
    assert [(v["id"], v["active"], v["number"]) for v in listed] == [
        (blue, False, 1),
        (new_reply, True, 2),
    ]
    assert listed[0]["content"] == "Blue."
    text = run("history", "versions", str(new_reply))
    assert f"2/2  id {new_reply}  assistant [active]" in text
    assert f"1/2  id {blue}  assistant Blue." in text

    assert "rated up" in run("history", "rate", str(blue), "up")
    assert f"message {blue} is active (version 1/2)" in run("history", "switch", str(blue))
    shown = run("history", "show", cid)
    assert f"## Assistant — id {blue} · version 1/2 · rated up\n\nBlue." in shown
    assert f"## User — id {question}\n" in shown

    edited = json.loads(run("history", "edit", str(question), "Name a fruit.", "--json"))
    assert edited["status"] == "complete"
    store = MemoryStore.open(home / "memory.db")
    path = store.messages(cid)
    assert (path[0].role, path[0].content) == ("user", "Name a fruit.")
    assert len(path) == 2 and path[1].id == edited["message_id"]
    archived = {m.id for m, _ in store.archived_messages(cid)}
    assert archived == {question, blue, new_reply}
    # The rated-up first reply over the regenerated one, once the user marks the chat.
    run("history", "mark", cid)
    pairs = preference_pairs(store)
    assert [(p.source, p.chosen, p.chosen_message_id) for p in pairs] == [
        ("ratings", "Blue.", blue)
    ]
    # Switching back to the first question brings back its branch.
    run("history", "switch", str(question))
    assert [m.id for m in store.messages(cid)] == [question, blue]


def test_rate_clear_and_the_training_hint(home: Path) -> None:
    cid, (_question, blue) = _seed(home)
    assert f"history mark {cid}" in run("history", "rate", str(blue), "down")
    assert "rating cleared" in run("history", "rate", str(blue), "clear")
    run("history", "mark", cid)
    assert "mark" not in run("history", "rate", str(blue), "up")
    store = MemoryStore.open(home / "memory.db")
    assert store.ratings_of(cid) == {blue: 1}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("rate", "999", "up"), "error: no message has id 999"),
        (("rate", "{question}", "up"), "only assistant replies are rated"),
        (("rate", "{blue}", "sideways"), "'sideways' is not one of 'up', 'down', 'clear'"),
        (("versions", "999"), "error: no message has id 999"),
        (("switch", "{blue}", "999"), "error: no message has id 999"),
        (("edit", "999", "text"), "error: no message has id 999"),
        (("edit", "{blue}", "text"), "is not a user message"),
        (("edit", "abc", "text"), "'abc' is not a valid integer"),
        (("regenerate", "nope"), "error: no conversation matches 'nope'"),
    ],
)
def test_bad_ids_get_one_clear_line_and_change_nothing(
    home: Path, args: tuple[str, ...], error: str
) -> None:
    cid, (question, blue) = _seed(home)
    filled = [a.format(question=question, blue=blue) for a in args]
    assert error in fails("history", *filled)
    store = MemoryStore.open(home / "memory.db")
    assert [m.id for m in store.messages(cid)] == [question, blue]
    assert list(store.archived_messages(cid)) == [] and store.ratings_of(cid) == {}


def test_regenerate_with_no_user_message_says_so(home: Path) -> None:
    store = MemoryStore.open(home / "memory.db")
    cid = store.create_conversation(strategy="buffer").id
    store.close()
    assert "error: nothing to regenerate" in fails("history", "regenerate", cid)
