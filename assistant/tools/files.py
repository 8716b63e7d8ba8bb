"""read_file: a text file's contents, only from inside the allowed folders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from langchain_core.tools import BaseTool, StructuredTool


class PathNotAllowed(ValueError):
    """The path is outside every allowed folder (or is not a regular file)."""


def confine(name: str, roots: Sequence[Path]) -> Path:
    """Resolve ``name`` (relative to an allowed folder) to a file inside one of ``roots``.

    Absolute paths, ``..`` parts and symlinks that lead outside the folders are refused;
    the check is done on the fully resolved path, so no spelling can escape.

    Raises:
        PathNotAllowed: no allowed folder contains a regular file by that name.
    """
    cleaned = name.strip().strip("'\"")
    if not cleaned or "\x00" in cleaned:
        raise PathNotAllowed("give a file name relative to an allowed folder")
    relative = Path(cleaned)
    if relative.is_absolute() or cleaned.startswith("~"):
        raise PathNotAllowed(f"{cleaned}: absolute paths are not allowed; use a relative name")
    if ".." in relative.parts:
        raise PathNotAllowed(f"{cleaned}: '..' is not allowed")
    for root in roots:
        base = root.expanduser().resolve()
        candidate = (base / relative).resolve()
        if candidate.is_relative_to(base) and candidate.is_file():
            return candidate
    raise PathNotAllowed(f"{cleaned}: no such file in the allowed folders")


def make_read_file_tool(roots: Sequence[Path], max_chars: int = 4000) -> BaseTool:
    """A LangChain tool that reads text files from ``roots`` (at most ``max_chars`` shown)."""
    folders = [Path(r) for r in roots]

    def read_file(path: str) -> str:
        """Read a text file from the user's folders. Input: the file name, e.g. notes/todo.txt."""
        if not folders:
            return "error: no folders are open to read_file"
        try:
            target = confine(path, folders)
            with open(target, "rb") as fh:
                data = fh.read(max_chars * 4 + 1)
        except PathNotAllowed as exc:
            return f"error: {exc}"
        except OSError as exc:
            return f"error: cannot read {path.strip()}: {os.strerror(exc.errno or 0)}"
        if b"\x00" in data[:1024]:
            return f"error: {path.strip()} is not a text file"
        text = data.decode("utf-8", errors="replace")
        if len(text) > max_chars:
            return text[:max_chars] + f"\n[... cut at {max_chars} characters]"
        return text

    return StructuredTool.from_function(read_file, metadata={"gbnf_input": "[^\\n]{1,120}"})
