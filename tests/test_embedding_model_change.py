"""Changing the embedding model of an index that has vectors: refused with a clear message
until `assistant train embeddings --revert` re-embeds with the configured model, which then
serves from its own collection; the old vectors are kept, and going back reuses them.

Real parts: the bundled MiniLM, a copy of it under another name (a model directory as a
user would configure one), a real chromadb and SQLite catalog.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.errors import ConfigError
from assistant.rag.adaptation import revert
from assistant.rag.embeddings import DEFAULT_MODEL, Embedder, resolve_model_path
from assistant.rag.index import open_index
from assistant.rag.reembed import Embeddings, active, base_embeddings
from assistant.rag.vectors import open_store
from tests.fixtures_rag.build import DOCS

QUESTION = "how do I descale the kettle"


@pytest.fixture
def other(tmp_path: Path) -> Path:
    """Another sentence-transformers model directory (the bundled weights, renamed)."""
    path = tmp_path / "models" / "other-minilm"
    shutil.copytree(resolve_model_path(None), path)
    return path


@pytest.fixture
def documents(home: Path) -> Path:
    folder = home / "documents"
    report = open_index(folder).ingest([str(DOCS)])
    assert report.chunks > 5
    return folder


def test_the_bundled_model_is_named_the_same_by_default_and_by_path() -> None:
    assert Embedder().name == Embedder(str(resolve_model_path(None))).name == DEFAULT_MODEL


def test_a_changed_model_is_refused_until_reembedded_and_going_back_reuses_vectors(
    documents: Path, other: Path
) -> None:
    count = open_index(documents).catalog.chunk_count()
    assert open_index(documents).store.model == DEFAULT_MODEL  # recorded at the first ingest
    changed = open_index(documents, embedding_model=str(other))
    with pytest.raises(ConfigError) as refused:
        changed.search(QUESTION)
    message = str(refused.value)
    assert "other-minilm" in message and "--revert" in message
    new = documents.parent / "new.md"
    new.write_text("# Boiler\n\nBleed the radiators every autumn before the heating starts.\n")
    with pytest.raises(ConfigError):  # an ingest would mix models: refused, nothing lost
        changed.ingest([str(new)])
    assert changed.catalog.chunk_count() == count and changed.catalog.file(str(new)) is None
    assert changed.search(QUESTION, mode="keyword")  # keyword search needs no vectors

    report = revert(documents, embedding_model=str(other))
    assert report.switched and report.embedded == count and report.reused == 0
    served = active(documents)
    assert served == base_embeddings(str(other)) and served.collection.startswith(
        "documents-base-other-minilm-"
    )
    index = open_index(documents, embedding_model=str(other))
    assert index.store.model == "other-minilm" and index.store.count() == count
    assert index.search(QUESTION, k=3)
    # The bundled model's vectors are kept: going back re-embeds nothing.
    assert open_store(documents / "chroma", None, "documents").count() == count
    with pytest.raises(ConfigError, match=DEFAULT_MODEL):
        open_index(documents).search(QUESTION)
    back = revert(documents)
    assert back.reused == count and back.embedded == 0
    assert active(documents) == Embeddings()
    assert open_index(documents).search(QUESTION, k=3)


def test_a_new_index_on_another_model_gets_its_own_collection(home: Path, other: Path) -> None:
    folder = home / "documents"
    index = open_index(folder, embedding_model=str(other))
    index.ingest([str(DOCS)])
    assert index.store.name == base_embeddings(str(other)).collection
    assert index.store.model == "other-minilm"
    assert open_index(folder, embedding_model=str(other)).search(QUESTION, k=3)
    # The bundled model finds none of the chunks embedded for it, and says so.
    with pytest.raises(ConfigError, match=r"none of your \d+ indexed chunks"):
        open_index(folder).search(QUESTION)


def test_vectors_from_before_models_were_recorded_are_checked_by_length(home: Path) -> None:
    folder = home / "documents"
    index = open_index(folder)
    index.ingest([str(DOCS)])
    count = index.catalog.chunk_count()
    # An index from before: its collection records no model and holds 3-dimensional vectors.
    store = open_store(folder / "chroma", None, "documents")
    ids = sorted(store.ids())
    store.recreate()
    store.add(ids, np.tile(np.float32([0.6, 0.8, 0.0]), (len(ids), 1)), ["x"] * len(ids))
    with pytest.raises(ConfigError, match="3-dimensional"):
        open_index(folder).search(QUESTION)
    # --revert empties that collection and fills it with the bundled model's vectors.
    result = CliRunner().invoke(cli, ["train", "embeddings", "--revert", "--json"])
    assert result.exit_code == 0, result.output
    index = open_index(folder)
    assert index.store.dimension() == 384 and index.store.count() == count
    assert index.store.model == DEFAULT_MODEL and index.search(QUESTION, k=3)


def test_the_cli_names_the_models_and_the_fix(documents: Path, other: Path, monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_RAG_EMBEDDING_MODEL", str(other))
    result = CliRunner().invoke(cli, ["search", QUESTION])
    assert result.exit_code == 2
    assert re.search(r"none of your \d+ indexed chunks is embedded with other-", result.output)
    assert "assistant train embeddings --revert" in result.output
    result = CliRunner().invoke(cli, ["train", "embeddings", "--revert"])
    assert result.exit_code == 0, result.output
    assert f"serving {other}" in result.output
    result = CliRunner().invoke(cli, ["search", QUESTION, "--json"])
    assert result.exit_code == 0, result.output
