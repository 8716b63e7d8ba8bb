"""One search over chats, documents and facts: a real memory.db, a real document index
(MiniLM + chromadb), the CLI's ``search --all`` and the app's ``/search``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.paths import DataPaths
from assistant.rag.fusion import RRF_K
from assistant.rag.index import Hit, open_index
from assistant.search_all import KINDS, search_all, search_everything
from assistant.services import Services
from tests.fixtures_rag.build import DOCS
from tui.search_commands import SearchCommands, found_markdown

QUERY = "descale the kettle with vinegar"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture documents, ingested once (copied into each test's data directory)."""
    folder = tmp_path_factory.mktemp("search-all") / "documents"
    assert open_index(folder).ingest([str(DOCS)]).indexed
    return folder


def _memory(home: Path) -> tuple[MemoryStore, dict[str, Any]]:
    store = MemoryStore.open(DataPaths(home).memory_db)
    talk = store.create_conversation(strategy="buffer", title="kitchen")
    asked = store.add_message(talk.id, "user", "How often should I descale the kettle?")
    store.add_message(talk.id, "assistant", "Every month in hard-water areas.")
    other = store.create_conversation(strategy="buffer", title="bikes")
    store.add_message(other.id, "user", "My bike chain squeaks.")
    fact = store.add_fact("I descale the kettle with vinegar on Sundays", talk.id)
    store.add_fact("I live in Lyon")
    return store, {"conversation": talk.id, "message": asked.id, "fact": fact.id}


def _setup(home: Path, documents: Path) -> dict[str, Any]:
    shutil.copytree(documents, DataPaths(home).documents)
    _, ids = _memory(home)
    return ids


def test_one_list_has_every_kind_with_its_provenance(home: Path, documents: Path) -> None:
    ids = _setup(home, documents)
    found = search_everything(Services(load_config()), QUERY, k=10)
    assert {f.kind for f in found} == set(KINDS)
    chat = next(f for f in found if f.kind == "chat")
    assert chat.provenance["conversation_id"] == ids["conversation"]
    assert chat.provenance["message_id"] == ids["message"]
    assert chat.where == f"conversation {ids['conversation']}, message {ids['message']}"
    fact = next(f for f in found if f.kind == "fact")
    assert fact.provenance["fact_id"] == ids["fact"] and fact.where == f"fact {ids['fact']}"
    doc = next(f for f in found if f.kind == "document")
    assert doc.provenance["path"].endswith("kettle.md") and "vinegar" in doc.text
    start, end = doc.provenance["line_start"], doc.provenance["line_end"]
    assert doc.where == f"{doc.provenance['path']}:{start}-{end}"
    lines = (DOCS / "kettle.md").read_text().splitlines()[start - 1 : end]
    assert "white vinegar" in " ".join(lines)  # the line span points at the quoted text
    # Unrelated rows never match: the bike chat and the Lyon fact share no word.
    assert not any("bike" in f.text or "Lyon" in f.text for f in found)


def test_fusion_ranks_each_sources_best_hits_first(home: Path) -> None:
    store, _ = _memory(home)

    def documents(query: str, depth: int) -> list[Hit]:
        return [
            Hit(f"/doc{n}.md", None, n, n, "", 1.0 - n / 10, f"kettle text {n}") for n in range(3)
        ]

    found = search_all(QUERY, store=store, documents=documents, k=20)
    # Reciprocal-rank fusion with equal weights: each list's first hit scores 1/(k+1),
    # its second 1/(k+2); ties go chat, document, fact.
    assert [f.score for f in found[:3]] == [round(1 / (RRF_K + 1), 6)] * 3
    assert [f.kind for f in found[:3]] == ["chat", "document", "fact"]
    assert found[3].score == round(1 / (RRF_K + 2), 6)
    assert [f.where for f in found if f.kind == "document"] == [
        "/doc0.md:0-0", "/doc1.md:1-1", "/doc2.md:2-2",
    ]  # fmt: skip
    assert len(search_all(QUERY, store=store, documents=documents, k=2)) == 2
    only_facts = search_all(QUERY, store=store, documents=None, kinds=("fact",))
    assert [f.kind for f in only_facts] == ["fact"]


def test_nothing_stored_is_created_or_found(home: Path) -> None:
    services = Services(load_config())
    assert search_everything(services, QUERY) == []
    assert not services.paths.memory_db.exists() and not services.paths.catalog.exists()


def test_cli_search_all_json_and_text(home: Path, documents: Path) -> None:
    ids = _setup(home, documents)
    result = CliRunner().invoke(cli, ["search", "--all", "--json", "-k", "6", QUERY])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert len(hits) == 6 and {h["kind"] for h in hits} == set(KINDS)
    assert {"kind", "text", "score", "where", "provenance"} <= set(hits[0])
    assert any(h["provenance"].get("fact_id") == ids["fact"] for h in hits)
    text = CliRunner().invoke(cli, ["search", "--all", QUERY]).output
    assert "[chat] conversation" in text and "[fact] fact" in text and "kettle.md:" in text


class _Host:
    """What /search needs of the chat screen: the services and a worker that runs now."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def ui(self, callback: Any, *args: Any, **kwargs: Any) -> Any:
        return callback(*args, **kwargs)

    def notify(self, message: str, **kwargs: Any) -> None:
        self.warnings.append(message)

    def add_note(self, markdown: str) -> object:
        self.notes.append(markdown)
        return None

    def start(self, group: str, work: Any, *args: Any, exclusive: bool = True) -> None:
        work(*args)


def test_app_search_command_shows_one_note_with_kinds(home: Path, documents: Path) -> None:
    ids = _setup(home, documents)
    host = _Host(Services(load_config()))
    commands = SearchCommands(host)  # type: ignore[arg-type]
    assert not commands.search("  ") and host.warnings == ["say what to look for: /search QUERY"]
    assert commands.search(QUERY)
    (note,) = host.notes
    assert note.startswith("**Search: descale the kettle with vinegar**")
    assert f"`chat` conversation {ids['conversation']}, message {ids['message']}" in note
    assert f"`fact` fact {ids['fact']}" in note and "`document` " in note
    assert found_markdown("x*y", []) == "No chats, documents or facts match **x\\*y**."
