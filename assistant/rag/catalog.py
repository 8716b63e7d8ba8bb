"""The document catalog: per-file status, chunk rows and the FTS5 keyword index, in SQLite.

One object over an injected ``sqlite_utils.Database``. A file's chunks and its status row
change together inside ``db.atomic()``, so a killed ingest leaves each file either fully
indexed (and skipped next time) or not recorded as indexed (and redone).
"""

from __future__ import annotations

import functools
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlite_utils
from sqlite_utils import Migrations

from assistant.rag.chunking import Chunk

migrations = Migrations("assistant.rag")


@migrations()
def m001_files_and_chunks(db: sqlite_utils.Database) -> None:
    """Files with their status, chunks with provenance, and an FTS5 index over chunk text."""
    db["files"].create(  # type: ignore[union-attr]
        {
            "path": str,
            "sha256": str,
            "status": str,
            "reason": str,
            "chunks": int,
            "seconds": float,
            "updated": float,
        },
        pk="path",
    )
    db["chunks"].create(  # type: ignore[union-attr]
        {
            "id": str,
            "path": str,
            "ordinal": int,
            "page": int,
            "line_start": int,
            "line_end": int,
            "heading": str,
            "text": str,
        },
        pk="id",
    )
    db["chunks"].create_index(["path"])  # type: ignore[union-attr]
    db["chunks"].enable_fts(["heading", "text"], tokenize="porter", create_triggers=True)  # type: ignore[union-attr]


@migrations()
def m002_duplicates_and_removals(db: sqlite_utils.Database) -> None:
    """Which indexed file a duplicate has the content of, and removals still to finish."""
    db["files"].add_column("duplicate_of", str)  # type: ignore[union-attr]
    db["files"].create_index(["sha256"])  # type: ignore[union-attr]
    # A file is forgotten in the catalog first, with its path queued here in the same
    # transaction; its vectors are deleted next and the row dropped. A kill in between
    # leaves nothing visible (search skips vectors without a catalog row) and the next
    # open finishes the deletion.
    db["removing"].create({"path": str}, pk="path")  # type: ignore[union-attr]


_STOPWORD_TEXT = """a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our ours
out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Any Unicode letter or digit run: "café" and "東京" are words too. FTS5's unicode61
# tokenizer folds case and accents the same way on both sides, so "café" finds "cafe".
# No match can hold a double quote, so each term is safe inside FTS5's quotes.
_WORD = re.compile(r"[^\W_]+")
# A pasted page as a query must not become a thousand-term OR that scans every row.
MAX_QUERY_TERMS = 64


def keyword_query(text: str) -> str:
    """Build an FTS5 query: the OR of the quoted, stopword-free terms (AND finds nothing)."""
    terms: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFC", text).lower()):
        if word not in _STOPWORDS and word not in terms:
            terms.append(word)
            if len(terms) == MAX_QUERY_TERMS:
                break
    return " OR ".join(f'"{t}"' for t in terms)


@dataclass(frozen=True)
class FileStatus:
    """What the last ingest did with one file."""

    path: str
    status: str  # "indexed", "duplicate", "skipped" or "failed"
    reason: str
    chunks: int
    seconds: float
    sha256: str
    updated: float
    duplicate_of: str = ""  # a duplicate: the indexed file with the same content
    id: int = 0  # the catalog row id: `assistant sources remove ID`

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


P = ParamSpec("P")
R = TypeVar("R")


def _locked(method: Callable[Concatenate[Catalog, P], R]) -> Callable[Concatenate[Catalog, P], R]:
    """Serialize access: the TUI searches from worker threads while an ingest runs."""

    def inner(self: Catalog, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(inner, method)
    return inner


class Catalog:
    """Per-file status, chunk provenance and keyword search over one SQLite database."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        """Wrap ``db`` and bring its schema up to date."""
        self.db = db
        self.lock = threading.RLock()
        migrations.apply(db)

    @_locked
    def file(self, path: str) -> FileStatus | None:
        """Return the stored status of ``path``, if any."""
        rows = list(self.db["files"].rows_where("path = ?", [path], select=_SELECT))
        return _status(rows[0]) if rows else None

    @_locked
    def files(self) -> list[FileStatus]:
        """Every file the catalog knows, by path."""
        return [_status(r) for r in self.db["files"].rows_where(order_by="path", select=_SELECT)]

    @_locked
    def file_by_id(self, row_id: int) -> FileStatus | None:
        """Return the file whose listing id is ``row_id``, if any."""
        rows = list(self.db["files"].rows_where("rowid = ?", [row_id], select=_SELECT))
        return _status(rows[0]) if rows else None

    @_locked
    def indexed_with_hash(self, sha256: str) -> list[str]:
        """The indexed files whose content has this SHA-256, by path."""
        rows = self.db.execute(
            "SELECT path FROM files WHERE sha256 = ? AND status = 'indexed' ORDER BY path",
            [sha256],
        ).fetchall()
        return [str(r[0]) for r in rows]

    @_locked
    def orphaned_duplicates(self) -> list[str]:
        """Duplicates whose original is gone, failed or now holds other content."""
        rows = self.db.execute(
            "SELECT d.path FROM files d LEFT JOIN files o ON o.path = d.duplicate_of "
            "AND o.status = 'indexed' AND o.sha256 = d.sha256 "
            "WHERE d.status = 'duplicate' AND o.path IS NULL ORDER BY d.path"
        ).fetchall()
        return [str(r[0]) for r in rows]

    @_locked
    def mark_duplicate(self, path: str, sha256: str, original: str, seconds: float) -> None:
        """Record ``path`` as holding the content of ``original``; its own chunks (if it had
        any) are dropped and its vectors queued for removal, in one transaction."""
        with self.db.atomic():
            self._queue_removal(path)
            self.db["files"].upsert(  # type: ignore[union-attr]
                {
                    "path": path,
                    "sha256": sha256,
                    "status": "duplicate",
                    "reason": f"same content as {original}",
                    "chunks": 0,
                    "seconds": round(seconds, 4),
                    "updated": time.time(),
                    "duplicate_of": original,
                },
                pk="path",
            )

    def _queue_removal(self, path: str) -> None:
        """Inside a transaction: drop the chunks of ``path``, queue its vectors' deletion."""
        if self.db.execute("DELETE FROM chunks WHERE path = ?", [path]).rowcount:
            self.db.execute("INSERT OR IGNORE INTO removing (path) VALUES (?)", [path])

    @_locked
    def pending_removals(self) -> list[str]:
        """Paths forgotten here whose vectors may still be in the vector store."""
        return [str(r[0]) for r in self.db.execute("SELECT path FROM removing").fetchall()]

    @_locked
    def removal_done(self, path: str) -> None:
        """The vectors of ``path`` are deleted: nothing is left to finish."""
        with self.db.atomic():
            self.db.execute("DELETE FROM removing WHERE path = ?", [path])

    @_locked
    def set_status(
        self, path: str, status: str, reason: str, *, sha256: str = "", seconds: float = 0.0
    ) -> None:
        """Record a skipped or failed file; its chunks (from an earlier, readable version)
        are dropped and its vectors queued for removal in the same transaction."""
        with self.db.atomic():
            existing = self.file(path)
            self._queue_removal(path)
            self.db["files"].upsert(  # type: ignore[union-attr]
                {
                    "path": path,
                    "sha256": sha256 or (existing.sha256 if existing else ""),
                    "status": status,
                    "reason": reason,
                    "chunks": 0,
                    "seconds": seconds,
                    "updated": time.time(),
                },
                pk="path",
            )

    @_locked
    def replace_chunks(
        self, path: str, sha256: str, ids: list[str], chunks: list[Chunk], seconds: float
    ) -> None:
        """Swap in the new chunks of ``path`` and mark it indexed, in one transaction."""
        rows = [
            {
                "id": chunk_id,
                "path": path,
                "ordinal": n,
                "page": c.page,
                "line_start": c.line_start,
                "line_end": c.line_end,
                "heading": c.heading,
                "text": c.text,
            }
            for n, (chunk_id, c) in enumerate(zip(ids, chunks, strict=True))
        ]
        with self.db.atomic():
            self.db.execute("DELETE FROM chunks WHERE path = ?", [path])
            if rows:
                self.db["chunks"].insert_all(rows, pk="id")  # type: ignore[union-attr]
            self.db["files"].upsert(  # type: ignore[union-attr]
                {
                    "path": path,
                    "sha256": sha256,
                    "status": "indexed",
                    "reason": "",
                    "chunks": len(rows),
                    "seconds": round(seconds, 4),
                    "updated": time.time(),
                    "duplicate_of": "",
                },
                pk="path",
            )

    @_locked
    def remove(self, path: str) -> None:
        """Forget ``path`` and its chunks; its vectors are queued for deletion (see
        :meth:`pending_removals`) in the same transaction."""
        with self.db.atomic():
            self._queue_removal(path)
            self.db.execute("DELETE FROM files WHERE path = ?", [path])

    @_locked
    def chunk_count(self) -> int:
        """Number of chunks in the keyword index."""
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    @_locked
    def chunks_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Return the chunk rows for ``ids``."""
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" for _ in wanted)
        rows = self.db.execute_returning_dicts(
            f"SELECT * FROM chunks WHERE id IN ({marks})", wanted
        )
        return {r["id"]: r for r in rows}

    @_locked
    def keyword_search(self, query: str, limit: int) -> list[tuple[str, float]]:
        """Return ``(chunk id, bm25 score)`` best first; higher is better."""
        match = keyword_query(query)
        if not match:
            return []
        rows = self.db.execute(
            "SELECT chunks.id, -bm25(chunks_fts) AS score FROM chunks_fts "
            "JOIN chunks ON chunks.rowid = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?",
            [match, limit],
        ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]


_SELECT = "rowid AS id, *"


def _status(row: dict[str, Any]) -> FileStatus:
    return FileStatus(
        path=row["path"],
        status=row["status"],
        reason=row["reason"] or "",
        chunks=row["chunks"] or 0,
        seconds=row["seconds"] or 0.0,
        sha256=row["sha256"] or "",
        updated=row["updated"] or 0.0,
        duplicate_of=row.get("duplicate_of") or "",
        id=int(row.get("id") or 0),
    )
