"""The agent's tool set as the CLI and the app build it: documents wired when ingested."""

from __future__ import annotations

from pathlib import Path

from assistant.config import load_config
from assistant.rag import index_for
from assistant.tools.toolset import assistant_tools, has_documents


def test_without_documents_only_the_always_on_tools(home: Path) -> None:
    config = load_config()
    assert not has_documents(config)
    assert [t.name for t in assistant_tools(config)] == ["calculator", "clock"]


def test_ingested_documents_become_searchable_by_the_agent(home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "wifi.md").write_text(
        "# Home network\n\nThe guest wifi password is otter42 and the router lives in the attic.\n"
    )
    config = load_config()
    report = index_for(config).ingest([str(notes)])
    assert report.indexed
    assert has_documents(config)
    tools = {t.name: t for t in assistant_tools(config, memory_recall=lambda q, k: ["likes tea"])}
    assert set(tools) == {"calculator", "clock", "search_documents", "recall_memory"}
    found = str(tools["search_documents"].invoke({"query": "guest wifi password"}))
    assert "otter42" in found
    assert "wifi.md" in found
