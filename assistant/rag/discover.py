"""Turning the user's PATH arguments into files to index, with reasons for what is skipped."""

from __future__ import annotations

import glob
import os
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.rag.loaders import not_regular, sniff_text, supported

IGNORED_DIRS = frozenset(
    {"node_modules", "__pycache__", "venv", ".venv", "site-packages", "dist", "build"}
)


NOT_FOUND = "no such file or folder"


def unmatched(arguments: list[str]) -> list[str]:
    """The arguments that name no file or folder (a glob that matches nothing included)."""
    absent = []
    for argument in arguments:
        expanded = os.path.expanduser(argument)
        if os.path.lexists(expanded):
            continue
        if glob.has_magic(expanded) and glob.glob(expanded, recursive=True):
            continue
        absent.append(argument)
    return absent


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
                    # abspath, not Path.absolute(): `../notes/a.md` and `a.md` are one key.
                    yield Found(Path(os.path.abspath(found.path)), found.skip)


def _walk(target: Path) -> Iterator[Found]:
    if not target.exists() and not target.is_symlink():
        yield Found(target, NOT_FOUND)
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
        mode = path.stat().st_mode
    except OSError as exc:
        return Found(path, f"cannot read: {exc.strerror or exc}")
    if not stat.S_ISREG(mode):
        return Found(path, not_regular(mode))
    if not supported(path):
        return Found(path, f"unsupported file type {path.suffix}")
    if not path.suffix:  # README, LICENSE, Makefile: text or not, the content says
        return Found(path, sniff_text(path))
    return Found(path)


# Characters that move the cursor, recolour or clear the screen, or reorder what follows
# (bidirectional overrides) when printed: a file name may hold any of them.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """Return ``text`` safe to print on a terminal: control characters shown escaped.

    ``"evil\\x1b[2J.md"`` comes back as ``evil\\x1b[2J.md``; letters of any script are kept.
    """
    if text.isprintable():
        return text
    return "".join(_escape(c) for c in text)


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    if char not in _BIDI and unicodedata.category(char) not in ("Cc", "Cs", "Zl", "Zp"):
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a non-UTF-8 name (os.fsdecode's surrogate)
        code -= 0xDC00
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
