"""`assistant train prepare --marked`: only conversations the user marked become training data."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.config import load_config
from assistant.memory.factory import open_store
from tests.test_cli import assistant


def test_marked_conversations_become_examples_and_nothing_else(home: Path, tmp_path: Path) -> None:
    store = open_store(load_config())
    kept = store.create_conversation(strategy="buffer", title="kept")
    store.add_message(kept.id, "user", "Who are you?")
    store.add_message(kept.id, "assistant", "I'm Quokka, your offline assistant.")
    store.add_message(kept.id, "user", "Thanks!")  # no answer to learn: dropped
    store.add_message(kept.id, "assistant", "You're w", status="interrupted")  # cut off: dropped
    private = store.create_conversation(strategy="buffer", title="private")
    store.add_message(private.id, "user", "My bank PIN is 4321")
    store.add_message(private.id, "assistant", "Noted.")
    store.close()

    refused = assistant("train", "prepare", "--marked", "--out", str(tmp_path / "d0"), home=home)
    assert refused.returncode != 0
    assert "no conversation is marked for training" in refused.stderr

    marked = assistant("history", "mark", kept.id, home=home)
    assert marked.returncode == 0, marked.stderr
    result = assistant("train", "prepare", "--marked", "--out", str(tmp_path / "d1"), home=home)
    assert result.returncode == 0, result.stderr
    data = "\n".join(p.read_text() for p in sorted((tmp_path / "d1").rglob("*.jsonl")))
    assert "Quokka" in data
    assert "PIN" not in data
    assert "You're w" not in data
    manifest = json.loads((tmp_path / "d1" / "manifest.json").read_text())
    assert manifest["counts"]["train"] + manifest["counts"]["val"] == 1
