"""``assistant memory`` and ``assistant history`` end to end, on the real data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.memory.store import MemoryStore


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_memory_add_list_forget(home: Path) -> None:
    added = json.loads(run("memory", "add", "my name is Ada", "--json"))
    run("memory", "add", "I live in Lisbon")
    listed = json.loads(run("memory", "list", "--json"))
    assert [f["content"] for f in listed] == ["my name is Ada", "I live in Lisbon"]
    assert f"{added['id']}  my name is Ada" in run("memory", "list")
    run("memory", "edit", str(added["id"]), "my name is Ada L.")
    assert "forgot" in run("memory", "forget", str(added["id"]))
    assert [f["content"] for f in json.loads(run("memory", "list", "--json"))] == [
        "I live in Lisbon"
    ]
    result = CliRunner().invoke(cli, ["memory", "forget", "999"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no fact has id 999")
    assert (home / "memory.db").exists()


def _seed(home: Path) -> str:
    store = MemoryStore.open(home / "memory.db")
    conv = store.create_conversation(strategy="buffer", title="Cats")
    store.add_message(conv.id, "user", "How long do cats sleep each day?")
    store.add_message(conv.id, "assistant", "Cats sleep twelve to sixteen hours a day.")
    other = store.create_conversation(strategy="window:2", title="Weather")
    store.add_message(other.id, "user", "Is it raining in Paris?")
    summary = store.add_summary(conv.id, "They talk about cats.", 1)
    store.close()
    return f"{conv.id}:{summary.id}"


def test_history_list_search_show_export_import(home: Path, tmp_path: Path) -> None:
    conversation_id, summary_id = _seed(home).split(":")
    listed = json.loads(run("history", "list", "--json"))
    assert [c["title"] for c in listed] == ["Weather", "Cats"]
    hits = json.loads(run("history", "search", "how many hours does a cat sleep", "--json"))
    assert [h["role"] for h in hits][:1] == ["assistant"]
    assert {h["conversation_id"] for h in hits} == {conversation_id}
    assert "no matches" in run("history", "search", "quantum")
    shown = run("history", "show", conversation_id[:6])
    assert shown.startswith("# Cats") and "Cats sleep twelve" in shown
    summaries = json.loads(run("memory", "summaries", conversation_id, "--json"))
    assert [s["content"] for s in summaries] == ["They talk about cats."]
    run("memory", "edit-summary", summary_id, "They discuss how cats sleep.")
    out = tmp_path / "cats.json"
    run("history", "export", conversation_id, "--format", "json", "-o", str(out))
    md = run("history", "export", conversation_id, "--format", "md")
    assert "## Assistant" in md
    exported = json.loads(out.read_text())
    assert exported["summaries"][0]["content"] == "They discuss how cats sleep."
    run("history", "strategy", conversation_id, "summary_buffer:300")
    assert (
        json.loads(run("history", "show", conversation_id, "--json"))["conversation"]["strategy"]
        == "summary_buffer:300"
    )
    result = CliRunner().invoke(cli, ["history", "import", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output
    imported = json.loads(run("history", "import", str(out), "--new-id", "copy01", "--json"))
    assert imported["id"] == "copy01"
    again = json.loads(run("history", "show", "copy01", "--json"))
    assert again["messages"] == exported["messages"]


def test_bad_strategy_exits_with_a_config_error(home: Path) -> None:
    conversation_id = _seed(home).split(":")[0]
    result = CliRunner().invoke(cli, ["history", "strategy", conversation_id, "lru"])
    assert result.exit_code == 2
    assert "unknown memory strategy" in result.output


@pytest.mark.slow
def test_history_send_talks_to_the_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MAX_TOKENS", "8")
    monkeypatch.setenv("ASSISTANT_N_THREADS", "1")
    monkeypatch.setenv("ASSISTANT_TEMPERATURE", "0")
    first = json.loads(run("history", "send", "remember that my name is Ada", "--json"))
    assert first["status"] == "complete" and first["answer"]
    second = json.loads(
        run("history", "send", "What is my name?", "-c", first["conversation_id"], "--json")
    )
    assert second["conversation_id"] == first["conversation_id"]
    assert [f["content"] for f in second["memory"]["facts"]] == ["my name is Ada"]
    assert json.loads(run("memory", "list", "--json"))[0]["content"] == "my name is Ada"
    shown = json.loads(run("history", "show", first["conversation_id"], "--json"))
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2


def test_history_mark_and_delete(home: Path) -> None:
    conversation_id = _seed(home).split(":")[0]
    run("history", "mark", conversation_id)
    listed = {c["id"]: c for c in json.loads(run("history", "list", "--json"))}
    assert listed[conversation_id]["marked_for_training"] is True
    run("history", "mark", conversation_id, "--unmark")
    run("history", "delete", conversation_id, "--yes")
    assert conversation_id not in {c["id"] for c in json.loads(run("history", "list", "--json"))}
    assert json.loads(run("history", "search", "cats sleep", "--json")) == []
