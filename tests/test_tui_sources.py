"""The app's documents commands on the real index (MiniLM, chromadb and SQLite on disk):
/ingest points to documents mode, /sources lists and removes files, /documents toggles
the mode, and /help says which is which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from assistant.backends.scripted import ScriptedBackend
from assistant.rag.index import open_index
from tests.test_tui_app import make_app, settle, shown, type_and_send
from tui.app import ChatApp
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar

KETTLE = "# Kettle\n\nDescale the kettle monthly with white vinegar.\n"
BIKE = "Oil the bike chain every week and check the tyre pressure.\n"


def _notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kettle.md").write_text(KETTLE)
    (folder / "bike.txt").write_text(BIKE)
    return folder


def _notifications(app: ChatApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _send(app: ChatApp, pilot: Pilot[Any], text: str) -> None:
    await type_and_send(pilot, text)
    await settle(app, pilot)


async def test_ingest_points_to_documents_mode_then_answers_from_the_files(
    tmp_path: Path,
) -> None:
    folder = _notes(tmp_path)
    app, _ = make_app(ScriptedBackend(["Descale it monthly with vinegar [1]."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await _send(app, pilot, f"/ingest {folder}")
        assert _notifications(app)[-1] == (
            "Indexed 2 files (2 chunks). "
            "Switch to documents mode with /documents (or F4) to ask about them. "
            "/adapt tunes search to them (minutes, in the background)."
        )
        await pilot.press("f4")
        await settle(app, pilot)
        assert app.query_one(StatusBar).mode == "documents"
        await _send(app, pilot, f"/ingest {folder}")
        assert _notifications(app)[-1] == (
            "Indexed 0 files; 2 unchanged. Documents mode is on: ask about them."
        )
        await _send(app, pilot, "How do I descale the kettle?")
        assert shown(app)[-1] == ("assistant", "Descale it monthly with vinegar [1].")
        assert app.query_one(SourcesPanel).hits[0].source == str(folder / "kettle.md")
        await _send(app, pilot, "/documents")
        assert app.query_one(StatusBar).mode == "chat"


async def test_sources_lists_the_ingested_files_and_marks_the_missing(
    tmp_path: Path, home: Path
) -> None:
    folder = _notes(tmp_path)
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await _send(app, pilot, "/sources")
        assert shown(app)[-1] == (
            "note", "No documents yet: `/ingest PATH` adds files or folders."
        )  # fmt: skip
        open_index(home / "documents").ingest([str(folder)])
        await _send(app, pilot, "/sources")
        role, note = shown(app)[-1]
        assert role == "note" and app.chat.mode == "chat"  # it lists; it does not toggle
        assert f"indexed   {folder}/bike.txt  1 chunks" in note
        assert f"indexed   {folder}/kettle.md  1 chunks" in note
        (folder / "bike.txt").unlink()
        await _send(app, pilot, "/sources")
        note = shown(app)[-1][1]
        assert f"missing   {folder}/bike.txt  no longer on disk" in note
        assert "1 no longer on disk: `/sources prune` drops them." in note
        await _send(app, pilot, "/sources prune")
        assert _notifications(app)[-1] == "removed 1 from your documents: bike.txt"
    assert [s.path for s in open_index(home / "documents").sources()] == [str(folder / "kettle.md")]


async def test_sources_remove_drops_a_file_from_vectors_and_keywords(
    tmp_path: Path, home: Path
) -> None:
    folder = _notes(tmp_path)
    open_index(home / "documents").ingest([str(folder)])
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await _send(app, pilot, "/sources remove nowhere.md")
        assert "no ingested source is nowhere.md" in _notifications(app)[-1]
        assert app.query_one(PromptInput).text == "/sources remove nowhere.md"  # to fix
        app.query_one(PromptInput).clear_text()
        await _send(app, pilot, "/sources delete x")
        assert _notifications(app)[-1].startswith("usage: /sources, /sources remove PATH")
        app.query_one(PromptInput).clear_text()
        await _send(app, pilot, f"/sources remove {folder}/kettle.md")
        assert _notifications(app)[-1] == "removed 1 from your documents: kettle.md"
    index = open_index(home / "documents")
    assert [Path(s.path).name for s in index.sources()] == ["bike.txt"]
    assert index.store.count() == index.catalog.chunk_count() == 1
    for mode in ("keyword", "dense"):
        hits = index.search("descale the kettle with vinegar", 3, mode)
        assert all(Path(h.source).name == "bike.txt" for h in hits), mode


async def test_help_names_the_documents_toggle_and_the_sources_list() -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await _send(app, pilot, "/help")
        text = shown(app)[-1][1]
        assert "`/documents`: Answer from your documents, with numbered sources (toggle)" in text
        assert "`/sources [remove PATH|ID]`: List your documents" in text
        assert "`F4`: documents mode on or off (answers from your files, as /documents)" in text
