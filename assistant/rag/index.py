"""The document index: ingest files into the catalog (keyword) and vector store (dense)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from assistant.errors import ConfigError, DocumentNotFoundError
from assistant.rag import fusion
from assistant.rag.catalog import Catalog, FileStatus
from assistant.rag.chunking import Chunk, chunk_sections
from assistant.rag.discover import NOT_FOUND, discover, unmatched
from assistant.rag.embeddings import Embedder
from assistant.rag.loaders import LoadError, load
from assistant.rag.vectors import VectorStore

MODES = ("hybrid", "dense", "keyword")
# Consecutive files are embedded together until this many chunks wait: small files still
# fill the model's length-sorted batches, and progress still moves every few seconds.
EMBED_GROUP_CHUNKS = 64


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with where it came from."""

    source: str
    page: int | None
    line_start: int | None
    line_end: int | None
    heading: str
    score: float
    text: str
    similarity: float | None = None  # cosine similarity to the query, when dense ran

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)

    def location(self) -> str:
        """``file``, ``file, page 3`` or ``file:10-24``: how a citation points at the text."""
        if self.page is not None:
            return f"{self.source}, page {self.page}"
        if self.line_start is not None:
            return f"{self.source}:{self.line_start}-{self.line_end}"
        return self.source


class Rankings(NamedTuple):
    """``(chunk id, score)`` lists, best first: each method's and the returned one."""

    dense: list[tuple[str, float]]
    keyword: list[tuple[str, float]]
    final: list[tuple[str, float]]


@dataclass(frozen=True)
class Event:
    """Progress: one file finished (``done`` of ``total`` so far).

    ``outcome`` is what this run did: "indexed", "unchanged", "duplicate", "skipped" or
    "failed" (an unchanged file's ``status`` still says "indexed").
    """

    status: FileStatus
    done: int
    total: int
    outcome: str = ""


class _Pending(NamedTuple):
    """A loaded, chunked file waiting to be embedded."""

    key: str
    digest: str
    chunks: list[Chunk]
    seconds: float


@dataclass
class IngestReport:
    """What one ingest did."""

    indexed: list[FileStatus] = field(default_factory=list)
    unchanged: list[FileStatus] = field(default_factory=list)
    duplicates: list[FileStatus] = field(default_factory=list)  # same content as another
    skipped: list[FileStatus] = field(default_factory=list)
    failed: list[FileStatus] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def chunks(self) -> int:
        """Chunks embedded in this run."""
        return sum(s.chunks for s in self.indexed)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "indexed": [s.as_dict() for s in self.indexed],
            "unchanged": [s.path for s in self.unchanged],
            "duplicates": [{"path": s.path, "same_as": s.duplicate_of} for s in self.duplicates],
            "skipped": [s.as_dict() for s in self.skipped],
            "failed": [s.as_dict() for s in self.failed],
            "removed": self.removed,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DocumentIndex:
    """Keyword and dense indexes over local files, kept in step per file."""

    def __init__(self, catalog: Catalog, store: VectorStore, embedder: Embedder) -> None:
        """Combine an open catalog, vector store and embedder."""
        self.catalog = catalog
        self.store = store
        self.embedder = embedder
        # Optional: anything with rerank(query, hits, k) -> hits (see assistant.rag.rerank).
        self.reranker: Any = None
        # Files are embedded together until this many chunks wait (one encode call).
        self.embed_group_chunks = EMBED_GROUP_CHUNKS
        self._checked: str | None = None  # the embedder name check_model last passed
        self._finish_removals()

    def check_model(self) -> None:
        """Refuse to mix embedding models: the served vectors must be the embedder's.

        Checked once, before the first dense search or embedding.

        Raises:
            ConfigError: the vectors were made by another model, or none of the indexed
                chunks has a vector of this one; the message says how to re-embed.
        """
        name = self.embedder.name
        if self._checked == name:
            return
        from assistant.rag.reembed import compatible

        fix = (
            f"run `assistant train embeddings --revert` (in the app: /adapt revert) to "
            f"re-embed your documents with "
            f"{name} (once; the old vectors are kept, so going back is quick), or set "
            f"rag_embedding_model back"
        )
        if not compatible(self.store, self.embedder):
            made = self.store.model or f"a {self.store.dimension()}-dimensional model"
            raise ConfigError(f"your documents were embedded with {made}, not {name}: {fix}")
        if self.store.count() == 0 and (chunks := self.catalog.chunk_count()):
            missing = f"none of your {chunks} indexed chunks is embedded with {name}"
            raise ConfigError(f"{missing}: {fix}")
        if self.store.model is None:
            self.store.record_model(name)
        self._checked = name

    def ingest(
        self,
        arguments: list[str],
        progress: Callable[[Event], None] | None = None,
        *,
        missing_ok: bool = False,
    ) -> IngestReport:
        """Index files, folders and globs; unchanged files are skipped, bad ones reported.

        The chunks of consecutive files are embedded together (``embed_group_chunks``)
        so small files still fill the model's batches; each file is then committed on its
        own, so an ingest killed midway keeps every file finished before. A file with the
        content of one already indexed is recorded as its duplicate, not indexed again;
        duplicates left without their original (removed, changed) are indexed at the end.

        Raises:
            DocumentNotFoundError: an argument names nothing (unless ``missing_ok``);
                then nothing is ingested.
        """
        if not missing_ok and (absent := unmatched(arguments)):
            names = ", ".join(absent)
            raise DocumentNotFoundError(f"no such file or folder: {names} (nothing was ingested)")
        started = time.perf_counter()
        self._finish_removals()
        report = IngestReport()
        found = list(discover(arguments))
        total = len(found)
        done = 0
        pending: list[_Pending] = []
        digests: dict[str, str] = {}  # content hash -> the first file of this run with it

        def finished(status: FileStatus, outcome: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(Event(status, done, max(total, done), outcome))

        def flush() -> None:
            for status in self._index_pending(pending):
                report.indexed.append(status)
                finished(status, "indexed")
            pending.clear()

        def take(path: Path) -> None:
            prepared = self._prepare_file(path, report, digests)
            if isinstance(prepared, _Pending):
                pending.append(prepared)
                if sum(len(p.chunks) for p in pending) >= self.embed_group_chunks:
                    flush()
            else:
                finished(*prepared)

        for item in found:
            if item.skip == NOT_FOUND:  # gone since it was listed (resync): forget it
                if self.catalog.file(str(item.path)) is not None:
                    self.remove(str(item.path))
                    report.removed.append(str(item.path))
                total -= 1
            elif item.skip:
                self.catalog.set_status(str(item.path), "skipped", item.skip)
                self._finish_removals()
                status = self.catalog.file(str(item.path))
                assert status is not None
                report.skipped.append(status)
                finished(status, "skipped")
            else:
                take(item.path)
        flush()
        orphans = [p for p in self.catalog.orphaned_duplicates() if Path(p).is_file()]
        total += len(orphans)
        for orphan in orphans:
            take(Path(orphan))
        flush()
        report.seconds = time.perf_counter() - started
        return report

    def _prepare_file(
        self, path: Path, report: IngestReport, digests: dict[str, str]
    ) -> tuple[FileStatus, str] | _Pending:
        """Hash, load and chunk one file; or its status and outcome if it is unchanged, a
        duplicate or unreadable."""
        started = time.perf_counter()
        key = str(path)
        try:
            digest = file_hash(path)
        except OSError as exc:
            reason = f"cannot read: {exc.strerror or exc}"
            return self._fail(key, reason, "", started, report), "failed"
        previous = self.catalog.file(key)
        if previous and previous.sha256 == digest and self._current(previous):
            report.unchanged.append(previous)
            if previous.status == "indexed":  # (a duplicate's original may change later on)
                digests.setdefault(digest, key)
            return previous, "unchanged"
        original = digests.get(digest) or self._indexed_copy(digest, key)
        if original:
            self.store_duplicate(key, digest, original, time.perf_counter() - started)
            duplicate = self.catalog.file(key)
            assert duplicate is not None
            report.duplicates.append(duplicate)
            return duplicate, "duplicate"
        try:
            chunks = chunk_sections(load(path))
        except LoadError as exc:
            return self._fail(key, str(exc), digest, started, report), "failed"
        except Exception as exc:  # a loader bug or odd file must not stop the whole ingest
            reason = f"{type(exc).__name__}: {exc}"
            return self._fail(key, reason, digest, started, report), "failed"
        digests[digest] = key
        return _Pending(key, digest, chunks, time.perf_counter() - started)

    def _current(self, previous: FileStatus) -> bool:
        """Whether an unchanged file needs nothing: indexed, or a duplicate of a file still
        indexed with its content."""
        if previous.status == "indexed":
            return True
        if previous.status != "duplicate":
            return False
        original = self.catalog.file(previous.duplicate_of)
        return (
            original is not None
            and original.status == "indexed"
            and original.sha256 == previous.sha256
        )

    def _indexed_copy(self, digest: str, key: str) -> str:
        """An indexed file other than ``key`` that still exists and has this content."""
        return next(
            (p for p in self.catalog.indexed_with_hash(digest) if p != key and Path(p).is_file()),
            "",
        )

    def store_duplicate(self, key: str, digest: str, original: str, seconds: float) -> None:
        """Record ``key`` as a duplicate of ``original`` (dropping any chunks it had)."""
        self.catalog.mark_duplicate(key, digest, original, seconds)
        self._finish_removals()

    def _index_pending(self, pending: list[_Pending]) -> list[FileStatus]:
        """Embed the chunks of ``pending`` files in one call, then commit file by file."""
        if not pending:
            return []
        started = time.perf_counter()
        texts = [_embed_text(c.heading, c.text) for p in pending for c in p.chunks]
        self.check_model()
        vectors = self.embedder.encode(texts)
        per_chunk = (time.perf_counter() - started) / max(1, len(texts))
        statuses = []
        offset = 0
        for p in pending:
            count = len(p.chunks)
            statuses.append(
                self.index_chunks(
                    p.key,
                    p.digest,
                    p.chunks,
                    vectors=vectors[offset : offset + count],
                    seconds=p.seconds + per_chunk * count,
                )
            )
            offset += count
        return statuses

    def index_chunks(
        self,
        key: str,
        digest: str,
        chunks: list[Chunk],
        *,
        vectors: Any = None,
        seconds: float = 0.0,
    ) -> FileStatus:
        """Make ``chunks`` (embedded now unless ``vectors`` are given) the content of ``key``."""
        started = time.perf_counter()
        prefix = f"{digest[:16]}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        ids = [f"{prefix}-{n}" for n in range(len(chunks))]
        self.check_model()
        if vectors is None:
            vectors = self.embedder.encode([_embed_text(c.heading, c.text) for c in chunks])
        # Vectors first, then the catalog row: a crash in between leaves the file not
        # recorded as indexed with this hash, so the next ingest redoes it cleanly.
        self.store.delete_path(key)
        self.store.add(ids, vectors, [key] * len(ids))
        elapsed = seconds + time.perf_counter() - started
        self.catalog.replace_chunks(key, digest, ids, chunks, elapsed)
        status = self.catalog.file(key)
        assert status is not None
        return status

    def _fail(
        self, key: str, reason: str, digest: str, started: float, report: IngestReport
    ) -> FileStatus:
        self.catalog.set_status(
            key, "failed", reason, sha256=digest, seconds=time.perf_counter() - started
        )
        self._finish_removals()  # the chunks of a version that loaded, if any
        status = self.catalog.file(key)
        assert status is not None
        report.failed.append(status)
        return status

    def resync(self, progress: Callable[[Event], None] | None = None) -> IngestReport:
        """Re-check every known file: re-index changed ones, drop deleted ones everywhere."""
        known = self.catalog.files()
        removed = []
        for status in known:
            if not Path(status.path).exists() and not Path(status.path).is_symlink():
                self.remove(status.path)
                removed.append(status.path)
        again = [s.path for s in known if s.status != "skipped" and s.path not in removed]
        report = self.ingest(again, progress, missing_ok=True)
        report.removed = removed + report.removed
        return report

    def remove(self, path: str) -> None:
        """Forget ``path`` in every index (duplicates of it are indexed at the next ingest;
        :meth:`promote_duplicates` does it now).

        The catalog forgets it first, queueing the vectors' deletion in the same
        transaction: a kill at any point leaves the file either listed and searchable, or
        gone from both (the next open deletes vectors left behind).
        """
        self.catalog.remove(path)
        self._finish_removals()

    def _finish_removals(self) -> None:
        """Delete the vectors of files the catalog has forgotten (after a kill, too)."""
        for path in self.catalog.pending_removals():
            self.store.delete_path(path)
            self.catalog.removal_done(path)

    def promote_duplicates(self, progress: Callable[[Event], None] | None = None) -> IngestReport:
        """Index the duplicates left without an indexed original (after a removal)."""
        return self.ingest([], progress)

    def sources(self) -> list[FileStatus]:
        """Per-file status of everything ingested, by path."""
        return self.catalog.files()

    def rankings(self, query: str, depth: int, mode: str = "hybrid") -> Rankings:
        """Return the dense, keyword and final rankings of chunk ids for ``query``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        dense: list[tuple[str, float]] = []
        keyword: list[tuple[str, float]] = []
        if mode != "keyword":
            self.check_model()
            dense = self.store.query(self.embedder.encode([query])[0], depth)
        if mode != "dense":
            keyword = self.catalog.keyword_search(query, depth)
        ranked = fusion.fuse(dense, keyword) if mode == "hybrid" else dense or keyword
        return Rankings(dense, keyword, ranked)

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        """Return the ``k`` best chunks for ``query`` (``mode``: hybrid, dense or keyword)."""
        dense, _, ranked = self.rankings(query, max(4 * k, 40), mode)
        similarity = dict(dense)
        top = ranked[: max(3 * k, 20) if self.reranker is not None else k]
        rows = self.catalog.chunks_by_id(i for i, _ in top)
        hits = []
        for chunk_id, score in top:
            row = rows.get(chunk_id)
            if row is None:  # a vector whose catalog row was never committed (crash)
                continue
            hits.append(
                Hit(
                    source=row["path"],
                    page=row["page"],
                    line_start=row["line_start"],
                    line_end=row["line_end"],
                    heading=row["heading"] or "",
                    score=round(score, 6),
                    text=row["text"],
                    similarity=round(similarity[chunk_id], 6) if chunk_id in similarity else None,
                )
            )
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits, k)
        return hits


def _embed_text(heading: str, text: str) -> str:
    """What gets embedded: the heading path gives a chunk its topic."""
    return f"{heading}\n{text}" if heading else text


def open_index(
    home: Path,
    *,
    embedding_model: str | None = None,
    chroma_server: str | None = None,
    db: sqlite_utils.Database | None = None,
) -> DocumentIndex:
    """Open (creating if needed) the document index kept under ``home``."""
    from assistant.rag.vectors import open_store

    home.mkdir(parents=True, exist_ok=True)
    if db is None:
        # Shared across threads (TUI workers); Catalog serializes access with a lock.
        db = sqlite_utils.Database(
            sqlite3.connect(str(home / "catalog.db"), check_same_thread=False)
        )
    catalog = Catalog(db)
    # The served collection and the model that made it (`assistant train embeddings`
    # switches both at once); without a switch, the configured model's own collection.
    from assistant.rag.reembed import active

    served = active(home, embedding_model)
    # A base model switched to by `--revert` gives way to a changed configuration; the
    # vectors then do not match it, which the first search or ingest says (check_model).
    model = embedding_model if served.name is None else served.model
    store = open_store(home / "chroma", chroma_server, served.collection)
    return DocumentIndex(catalog, store, Embedder(model))
