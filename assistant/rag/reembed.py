"""Which embeddings the index serves, and re-embedding into a new collection safely.

``active.json`` in the index folder names the chromadb collection being served and the
model its vectors came from (no file: the ``documents`` collection and the configured
model). A re-embed writes ``pending.json`` first, fills a NEW collection from the
catalog's chunks (resuming from whatever ids it already holds), and only when every chunk
is there replaces ``active.json`` (temp file, fsync, rename). Until that rename the old
collection and model keep serving, so a kill -9 at any moment loses nothing: the next run
carries on where the last one stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.rag.catalog import Catalog
from assistant.rag.embeddings import DEFAULT_MODEL, Embedder, resolve_model_path
from assistant.rag.vectors import COLLECTION, VectorStore, open_store
from assistant.registry import default_name

ACTIVE = "active.json"
PENDING = "pending.json"
BATCH = 64


@dataclass(frozen=True)
class Embeddings:
    """A collection and the model that made its vectors (None: the configured model)."""

    collection: str = COLLECTION
    model: str | None = None
    name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def read_pointer(home: Path, file: str = ACTIVE) -> Embeddings | None:
    """The embeddings recorded in ``home/file``, or None when there is no such file."""
    path = home / file
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Embeddings(str(data["collection"]), data.get("model"), data.get("name"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); fix or delete it") from exc


def compatible(store: VectorStore, embedder: Embedder) -> bool:
    """Whether ``store``'s vectors can be ``embedder``'s: the model it recorded, or (a
    collection made before models were recorded) the length of its vectors."""
    if store.model is not None:
        return store.model == embedder.name
    found = store.dimension()
    return found is None or found == embedder.dimension


def base_embeddings(model: str | None) -> Embeddings:
    """The collection for a base (not adapted) model: ``documents`` for the bundled one, a
    collection named after the model's folder for any other, so vectors of two models never
    share a collection.
    """
    if not model or model == DEFAULT_MODEL:
        return Embeddings()
    path = resolve_model_path(model).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]  # two folders of one name
    return Embeddings(f"{COLLECTION}-base-{default_name(path)}-{digest}", str(path), None)


def active(home: Path, model: str | None = None) -> Embeddings:
    """The embeddings the index serves now: the switched-to ones, or the configured
    ``model``'s own collection (:func:`base_embeddings`)."""
    return read_pointer(home) or base_embeddings(model)


def write_pointer(home: Path, value: Embeddings, file: str = ACTIVE) -> None:
    """Replace ``home/file`` atomically: readers see the old pointer or the new, never half."""
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=f".{file}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value.as_dict(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, home / file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(home, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass
class ReembedReport:
    """What a re-embed did."""

    collection: str
    embedded: int = 0  # chunks embedded by this run
    reused: int = 0  # chunks already in the new collection (a resumed run)
    removed: int = 0  # vectors of chunks no longer in the catalog
    seconds: float = 0.0
    switched: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


def _catalog_ids(catalog: Catalog) -> set[str]:
    with catalog.lock:
        return {str(r[0]) for r in catalog.db.execute("SELECT id FROM chunks").fetchall()}


def fill(
    catalog: Catalog,
    store: VectorStore,
    embedder: Embedder,
    *,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    report: ReembedReport | None = None,
) -> ReembedReport:
    """Embed every catalog chunk missing from ``store`` and drop vectors of gone chunks.

    Repeats until a pass finds nothing to do, so chunks ingested meanwhile are caught.
    """
    from assistant.rag.index import _embed_text

    report = report or ReembedReport(store.name)
    first = True
    while True:
        wanted = _catalog_ids(catalog)
        have = store.ids()
        extra = sorted(have - wanted)
        if extra:
            store.delete(extra)
            report.removed += len(extra)
        missing = sorted(wanted - have)
        if first:
            report.reused = len(wanted & have)
            first = False
        if not missing:
            return report
        total = len(missing)
        for start in range(0, total, batch):
            ids = missing[start : start + batch]
            rows = catalog.chunks_by_id(ids)
            ids = [i for i in ids if i in rows]  # removed by an ingest meanwhile
            vectors = embedder.encode(
                [_embed_text(rows[i]["heading"], rows[i]["text"]) for i in ids]
            )
            store.add(ids, vectors, [rows[i]["path"] for i in ids])
            report.embedded += len(ids)
            if progress is not None:
                progress(min(start + batch, total), total)


def reembed(
    home: Path,
    catalog: Catalog,
    target: Embeddings,
    *,
    server: str | None = None,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    previous_model: str | None = None,
) -> ReembedReport:
    """Fill ``target``'s collection from the catalog, then make it the served one
    (``previous_model``: the configured model, served when nothing was switched to).

    The collection served before stays untouched until the switch, and is kept after it
    (a running app may still be reading it); older ones are dropped. A target that is
    already served is filled in place (only missing vectors are added). A target holding
    another model's vectors is emptied first.
    """
    started = time.perf_counter()
    previous = active(home, previous_model)
    write_pointer(home, target, PENDING)
    embedder = Embedder(target.model)
    store = open_store(home / "chroma", server, target.collection)
    if not compatible(store, embedder):  # another model's vectors: never reused
        store.recreate()
    if store.model is None:
        store.record_model(embedder.name)
    report = fill(catalog, store, embedder, batch=batch, progress=progress)
    write_pointer(home, target)  # the switch: everything before it was invisible to readers
    report.switched = True
    (home / PENDING).unlink(missing_ok=True)
    # A shared chroma server's collections are its owner's to drop; and when the target was
    # served already (filled in place, or a resume after the switch) nothing was replaced.
    if server is None and target.collection != previous.collection:
        store.drop_other_collections({target.collection, previous.collection})
    report.seconds = time.perf_counter() - started
    return report


def pending(home: Path) -> Embeddings | None:
    """A re-embed that started and did not switch (killed, or refused a switch)."""
    return read_pointer(home, PENDING)
