"""Ingest, incremental re-sync, resume and search on the real embedding model and chromadb."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.typing import NDArray

from assistant.backends.base import GenerationOptions
from assistant.backends.scripted import ScriptedBackend
from assistant.cli import cli
from assistant.rag.answer import NOTHING_FOUND, answer
from assistant.rag.embeddings import Embedder
from assistant.rag.index import DocumentIndex, Event, open_index
from tests.fixtures_rag.build import DOCS, mixed_folder


class CountingEmbedder(Embedder):
    """The real embedder, counting passages; optionally fails on the nth call (a crash)."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        super().__init__()
        self.texts = 0
        self.calls = 0
        self.fail_on_call = fail_on_call

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt  # what Ctrl-C or a kill looks like mid-file
        self.texts += len(texts)
        return super().encode(texts)


def _index(home: Path, embedder: Embedder | None = None) -> DocumentIndex:
    index = open_index(home / "documents")
    if embedder is not None:
        index.embedder = embedder
    return index


def test_mixed_folder_is_indexed_and_bad_files_are_reported(tmp_path: Path, home: Path) -> None:
    folder = mixed_folder(tmp_path / "docs")
    events: list[Event] = []
    report = _index(home).ingest([str(folder)], events.append)
    assert sorted(Path(s.path).name for s in report.indexed) == [
        "bikes.html", "expenses.docx", "garden.rst", "invoice.py", "kettle.md",
        "lighthouse.pdf", "notes.txt",
    ]  # fmt: skip
    assert {Path(s.path).name: s.reason for s in report.failed} == {
        "blob.txt": "binary file (contains NUL bytes)",
        "broken.docx": "cannot read DOCX: Package not found at '" + str(folder) + "/broken.docx'",
        "empty.txt": "empty file",
        "latin1.txt": "not UTF-8 text (bad byte at offset 3)",
        "locked.pdf": "encrypted PDF (remove the password first)",
    }
    assert {Path(s.path).name: s.reason for s in report.skipped} == {
        ".secret.txt": "hidden file",
        "image.png": "unsupported file type .png",
        "self.md": "cannot read: Too many levels of symbolic links",
        "again": "symlink loop (folder already visited)",
    }
    assert [e.done for e in events] == list(range(1, 17)) and events[-1].total == 16
    assert report.chunks == 12
    statuses = {Path(s.path).name: s for s in _index(home).sources()}
    assert statuses["kettle.md"].status == "indexed" and statuses["kettle.md"].chunks == 3


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingested mixed folder for the read-only search tests."""
    root = tmp_path_factory.mktemp("shared_index")
    mixed_folder(root / "docs")
    _index(root).ingest([str(root / "docs")])
    return root


@pytest.mark.parametrize(
    ("query", "source", "where"),
    [
        ("how do I remove limescale from my kettle", "kettle.md", (None, 7, 8)),
        ("taxi fare refund limit", "expenses.docx", (None, None, None)),
        ("which soil drains water fast", "lighthouse.pdf", (2, None, None)),
        ("when should I water tomato plants", "garden.rst", (None, 7, 8)),
        ("invoice_total VAT", "invoice.py", (None, 1, 7)),
    ],
)
def test_search_finds_the_right_chunk_with_provenance(
    shared: Path, query: str, source: str, where: tuple[int | None, ...]
) -> None:
    for mode in ("hybrid", "dense"):
        top = _index(shared).search(query, k=3, mode=mode)[0]
        assert Path(top.source).name == source, mode
        assert (top.page, top.line_start, top.line_end) == where


def test_unchanged_files_are_skipped_changed_reembedded_deleted_removed(
    tmp_path: Path, home: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("kettle.md", "garden.rst", "notes.txt"):
        shutil.copy(DOCS / name, folder / name)
    embedder = CountingEmbedder()
    index = _index(home, embedder)
    index.ingest([str(folder)])
    first = embedder.texts
    assert first == 6 and index.store.count() == 6 and index.catalog.chunk_count() == 6

    again = index.ingest([str(folder)])
    assert embedder.texts == first and len(again.unchanged) == 3 and not again.indexed

    (folder / "notes.txt").write_text("The lighthouse will be repainted in June instead.\n")
    (folder / "garden.rst").unlink()
    report = index.resync()
    assert [Path(s.path).name for s in report.indexed] == ["notes.txt"]
    assert [Path(p).name for p in report.removed] == ["garden.rst"]
    assert embedder.texts == first + 1
    assert index.store.count() == 4 and index.catalog.chunk_count() == 4
    hits = index.search("tomato watering blight", k=4)
    assert all(Path(h.source).name != "garden.rst" for h in hits)
    assert "June" in index.search("lighthouse repainting", k=1)[0].text


def test_killed_ingest_resumes_without_redoing_finished_files(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("bikes.html", "garden.rst", "kettle.md", "notes.txt"):
        shutil.copy(DOCS / name, folder / name)
    crashing = CountingEmbedder(fail_on_call=3)
    index = _index(home, crashing)
    index.embed_group_chunks = 1  # one encode call per file
    with pytest.raises(KeyboardInterrupt):
        index.ingest([str(folder)])
    done = {Path(s.path).name: s.status for s in _index(home).sources()}
    assert done == {"bikes.html": "indexed", "garden.rst": "indexed"}

    resumed = CountingEmbedder()
    index = _index(home, resumed)  # a new process would reopen the same files on disk
    report = index.ingest([str(folder)])
    assert sorted(Path(s.path).name for s in report.unchanged) == ["bikes.html", "garden.rst"]
    assert sorted(Path(s.path).name for s in report.indexed) == ["kettle.md", "notes.txt"]
    assert resumed.texts == 4
    assert index.store.count() == index.catalog.chunk_count() == 8


def test_small_files_are_embedded_together_and_committed_one_by_one(
    tmp_path: Path, home: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("bikes.html", "garden.rst", "kettle.md", "notes.txt"):
        shutil.copy(DOCS / name, folder / name)
    embedder = CountingEmbedder()
    events: list[Event] = []
    index = _index(home, embedder)
    report = index.ingest([str(folder)], events.append)
    assert embedder.calls == 1 and embedder.texts == report.chunks == 8
    assert [e.done for e in events] == [1, 2, 3, 4]
    assert {Path(e.status.path).name for e in events} == {
        "bikes.html", "garden.rst", "kettle.md", "notes.txt"
    }  # fmt: skip
    assert all(e.status.status == "indexed" and e.status.seconds > 0 for e in events)
    assert index.store.count() == index.catalog.chunk_count() == 8
    assert "Skerry Point" in index.search("lighthouse repainting", k=1)[0].text


def test_answer_cites_numbered_sources_or_refuses(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(DOCS / "kettle.md", folder / "kettle.md")
    index = _index(home)
    index.ingest([str(folder)])
    backend = ScriptedBackend(["Fill it with white vinegar for an hour [1]."])
    options = GenerationOptions(max_tokens=64)
    hits = index.search("How do I descale the kettle?", k=3)
    result = answer(backend, "How do I descale the kettle?", hits, options, min_similarity=0.3)
    assert result.found and result.cited == [1]
    assert result.sources[0].heading == "Kettle manual > Descaling"
    prompt = backend.calls[0][0][1]["content"]
    assert prompt.startswith(f"Sources:\n\n[1] {folder}/kettle.md:7-8 (Kettle manual > Descaling)")

    unrelated = index.search("Who won the 1998 football world cup?", k=3)
    refused = answer(backend, "Who won?", unrelated, options, min_similarity=0.3)
    assert (refused.found, refused.answer, refused.sources) == (False, NOTHING_FOUND, [])
    assert len(backend.calls) == 1  # the refusal never asked the model


def test_cli_ingest_search_sources_and_ask_docs_on_the_real_model(
    tmp_path: Path, home: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(DOCS / "kettle.md", folder / "kettle.md")
    shutil.copy(DOCS / "notes.txt", folder / "notes.txt")
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(folder / "*.md"), str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["chunks"] == 4 and len(report["indexed"]) == 2

    result = runner.invoke(cli, ["search", "descale with vinegar", "-k", "2", "--json"])
    hits = json.loads(result.stdout)
    assert len(hits) == 2
    assert set(hits[0]) == {
        "source", "page", "line_start", "line_end", "heading", "score", "text", "similarity",
    }  # fmt: skip
    assert (hits[0]["line_start"], hits[0]["line_end"]) == (7, 8)

    result = runner.invoke(cli, ["sources", "--json"])
    assert [(Path(s["path"]).name, s["chunks"]) for s in json.loads(result.stdout)] == [
        ("kettle.md", 3),
        ("notes.txt", 1),
    ]

    result = runner.invoke(
        cli, ["ask", "--docs", "--json", "--max-tokens", "24", "How do I descale the kettle?"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["found"] and out["answer"]
    assert out["sources"][0]["n"] == 1 and out["sources"][0]["line_start"] == 7

    result = runner.invoke(cli, ["ask", "--docs", "What is the airspeed of a swallow?"])
    assert result.stdout.strip() == NOTHING_FOUND
