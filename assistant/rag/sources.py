"""The ingested files as a list to manage: find them by path, folder or id, spot the ones
gone from disk, remove them from every index.

Used by ``assistant sources`` and the app's ``/sources``; both show the same listing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.errors import DocumentNotFoundError
from assistant.rag.catalog import FileStatus
from assistant.rag.index import DocumentIndex, Event, IngestReport


@dataclass(frozen=True)
class Source:
    """One listed file and whether it is still on disk."""

    status: FileStatus
    exists: bool

    def describe(self) -> str:
        """``indexed  /notes/a.md  3 chunks`` and so on: one line of the listing (no id)."""
        s = self.status
        if not self.exists:
            detail = "no longer on disk"
        elif s.status == "indexed":
            detail = f"{s.chunks} chunks, {s.seconds:.2f} s"
        else:
            detail = s.reason
        state = s.status if self.exists else "missing"
        return f"{state:9} {s.path}  {detail}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict: the file's status with ``exists``."""
        return {**self.status.as_dict(), "exists": self.exists}


@dataclass
class RemoveReport:
    """What a removal did: the paths forgotten, and duplicates indexed in their place."""

    removed: list[str] = field(default_factory=list)
    promoted: IngestReport = field(default_factory=IngestReport)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"removed": self.removed, "indexed": [s.path for s in self.promoted.indexed]}


def listing(index: DocumentIndex) -> list[Source]:
    """Every file the index knows, by path, each marked with whether it is still there."""
    return [Source(s, os.path.lexists(s.path)) for s in index.sources()]


def missing_sources(index: DocumentIndex) -> list[FileStatus]:
    """The listed files no longer on disk."""
    return [s.status for s in listing(index) if not s.exists]


def find_sources(index: DocumentIndex, arguments: list[str]) -> list[FileStatus]:
    """Resolve each argument to listed files: a path, an id from the listing, or a folder
    (every file listed under it).

    Raises:
        DocumentNotFoundError: an argument matches nothing (then nothing is returned).
    """
    known = index.sources()
    found: dict[str, FileStatus] = {}
    absent = []
    for argument in arguments:
        matches = _matches(index, known, argument)
        if not matches:
            absent.append(argument)
        found.update((s.path, s) for s in matches)
    if absent:
        raise DocumentNotFoundError(
            f"no ingested source is {', '.join(absent)}; give a path, folder or id from the "
            "sources list (nothing was removed)"
        )
    return list(found.values())


def _matches(index: DocumentIndex, known: list[FileStatus], argument: str) -> list[FileStatus]:
    key = os.path.abspath(os.path.expanduser(argument)) if argument else ""
    exact = index.catalog.file(key) if key else None
    if exact is not None:
        return [exact]
    if argument.isdigit():
        by_id = index.catalog.file_by_id(int(argument))
        if by_id is not None:
            return [by_id]
    prefix = key.rstrip(os.sep) + os.sep
    return [s for s in known if key and s.path.startswith(prefix)]


def remove_sources(
    index: DocumentIndex,
    statuses: list[FileStatus],
    progress: Callable[[Event], None] | None = None,
) -> RemoveReport:
    """Forget ``statuses`` in every index; a duplicate of a removed file is indexed then."""
    report = RemoveReport()
    for status in statuses:
        index.remove(status.path)
        report.removed.append(status.path)
    report.promoted = index.promote_duplicates(progress)
    return report
