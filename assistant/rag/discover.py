"""Turning the user's PATH arguments into files to index, with reasons for what is skipped."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.rag.loaders import supported

IGNORED_DIRS = frozenset(
    {"node_modules", "__pycache__", "venv", ".venv", "site-packages", "dist", "build"}
)


@dataclass(frozen=True)
class Found:
    """A candidate file; ``skip`` holds the reason when it is not to be indexed."""

    path: Path
    skip: str = ""


def discover(arguments: list[str]) -> Iterator[Found]:
    """Expand files, folders (recursively) and glob patterns into candidate files.

    Hidden files and folders, well-known build or dependency folders and unsupported file
    types come back with a ``skip`` reason; directory symlink loops are never followed.
    """
    seen: set[Path] = set()
    for argument in arguments:
        expanded = os.path.expanduser(argument)
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else []
        targets = [Path(m) for m in matches] or [Path(expanded)]
        for target in targets:
            for found in _walk(target):
                # One file reached through several paths (symlinks, overlapping globs) is
                # indexed once; realpath does not raise on symlink loops.
                key = Path(os.path.realpath(found.path))
                if key not in seen:
                    seen.add(key)
                    yield Found(found.path.absolute(), found.skip)


def _walk(target: Path) -> Iterator[Found]:
    if not target.exists() and not target.is_symlink():
        yield Found(target, "no such file or folder")
        return
    if not target.is_dir():
        yield _check_file(target)
        return
    visited: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(target, followlinks=True):
        stat = os.stat(root)
        if (stat.st_dev, stat.st_ino) in visited:
            dirs[:] = []
            yield Found(Path(root), "symlink loop (folder already visited)")
            continue
        visited.add((stat.st_dev, stat.st_ino))
        kept = []
        for name in sorted(dirs):
            if name.startswith("."):
                yield Found(Path(root, name), "hidden folder")
            elif name in IGNORED_DIRS:
                yield Found(Path(root, name), "ignored folder")
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = Path(root, name)
            yield Found(path, "hidden file") if name.startswith(".") else _check_file(path)


def _check_file(path: Path) -> Found:
    try:
        path.stat()
    except OSError as exc:
        return Found(path, f"cannot read: {exc.strerror or exc}")
    if not path.is_file():
        return Found(path, "not a regular file")
    if not supported(path):
        return Found(path, f"unsupported file type {path.suffix or '(none)'}")
    return Found(path)
