"""Document loaders: a file in, a list of :class:`Section` out (text with its provenance).

Each loader keeps what a citation needs: the page (PDF), the 1-based line span in the source
file (text formats) and the heading path. Loaders raise :class:`LoadError` with a reason a
user can act on; they never print.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 50 * 1024 * 1024

TEXT_SUFFIXES = {".txt", ".text", ".log", ".csv", ".tsv", ".ini", ".cfg", ".toml", ".yaml", ".yml"}
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}
REST_SUFFIXES = {".rst", ".rest"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
CODE_SUFFIXES = {
    ".py", ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cc", ".cpp", ".hpp", ".rs",
    ".go", ".rb", ".php", ".sh", ".bash", ".sql", ".kt", ".swift", ".scala", ".lua", ".r",
    ".cs", ".json",
}  # fmt: skip


class LoadError(Exception):
    """The file cannot be read as a document; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what a container file may unpack to, beyond its size on disk.

    The defaults are far above real documents (a 5,000-page PDF, a DOCX with 64 MB of XML)
    and far below what stalls an ingest: python-docx holds every member in memory and
    parses the XML ones into a tree several times their size.
    """

    max_unpacked_bytes: int = 256 * 1024 * 1024  # DOCX: all zip members together
    max_xml_bytes: int = 64 * 1024 * 1024  # DOCX: the XML members, which get parsed
    max_members: int = 10_000  # DOCX: zip entries
    max_pages: int = 5_000  # PDF
    max_text_chars: int = 20_000_000  # PDF: text extracted from all pages


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document."""

    text: str
    heading: str = ""
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    # The source line of each line of ``text`` when they are not consecutive (HTML).
    line_map: tuple[int, ...] | None = None


def supported(path: Path) -> bool:
    """Return whether a loader exists for the file's suffix (a file without one is read as
    plain text when :func:`sniff_text` finds text in it)."""
    return _loader_for(path) is not None


SNIFF_BYTES = 8192


def sniff_text(path: Path) -> str:
    """Return why the start of ``path`` is not text (NUL bytes, not UTF-8), or "" if it is.

    Files without an extension (``README``, ``LICENSE``, ``Makefile``) say nothing about
    their content in their name: their first bytes decide.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return not_regular(os.fstat(fd).st_mode)
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if b"\x00" in head:
        return "binary file (no extension, contains NUL bytes)"
    try:
        # final=False: a multi-byte character cut at the end of the sample is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        return f"binary file (no extension, not UTF-8 text at offset {exc.start})"
    return ""


def load(
    path: Path, max_bytes: int = MAX_FILE_BYTES, limits: Limits | None = None
) -> list[Section]:
    """Read ``path`` into sections.

    Raises:
        LoadError: unsupported, not a regular file, too big (on disk or unpacked), empty,
            binary, not UTF-8, encrypted or corrupt.
    """
    loader = _loader_for(path)
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    try:
        info = path.stat()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(not_regular(info.st_mode))
    size = info.st_size
    if size == 0:
        raise LoadError("empty file")
    if size > max_bytes:
        raise LoadError(f"file too large ({size} bytes > {max_bytes})")
    sections = [s for s in loader(path, limits or Limits()) if s.text.strip()]
    if not sections:
        raise LoadError("no text found")
    return sections


def not_regular(mode: int) -> str:
    """Say what a path that is not a regular file is, for a skip or failure reason."""
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    kinds = [
        (stat.S_ISFIFO, "a named pipe (fifo)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ]
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    return f"not a regular file: {kind}"


_Loader = Callable[[Path, Limits], list[Section]]


def _loader_for(path: Path) -> _Loader | None:
    # The heavier formats live in their own modules, imported only when such a file comes.
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return _text_only(_load_markdown)
    if suffix in REST_SUFFIXES:
        return _text_only(_load_rest)
    if suffix in HTML_SUFFIXES:
        from assistant.rag.html_text import load_html

        return _text_only(load_html)
    if suffix == ".pdf":
        from assistant.rag.office import load_pdf

        return load_pdf
    if suffix == ".docx":
        from assistant.rag.office import load_docx

        return load_docx
    if suffix in TEXT_SUFFIXES or suffix in CODE_SUFFIXES or not suffix:
        return _text_only(_load_plain)
    return None


def _text_only(loader: Callable[[Path], list[Section]]) -> _Loader:
    """Adapt a loader of a plain-text format, which the on-disk size bound already covers."""
    return lambda path, _limits: loader(path)


def read_text(path: Path) -> str:
    """Return the file's text; raise LoadError for binary or non-UTF-8 content."""
    data = _read_regular(path)
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (bad byte at offset {exc.start})") from exc


def _read_regular(path: Path) -> bytes:
    """Read a regular file's bytes, refusing anything else without blocking on it."""
    # O_NONBLOCK: opening a fifo for reading would otherwise wait for a writer forever
    # (the path may have been swapped for one since it was checked); fstat then tells.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise LoadError(not_regular(mode))
            return fh.read()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from exc


def _load_plain(path: Path) -> list[Section]:
    lines = read_text(path).splitlines()
    return [Section("\n".join(lines), line_start=1, line_end=max(len(lines), 1))]


def _headed_sections(lines: list[str], headings: dict[int, tuple[int, str]]) -> list[Section]:
    """Split ``lines`` at ``headings`` (0-based line index -> (level, title))."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body_start = 0

    def flush(end: int) -> None:
        filled = [i for i in range(body_start, end) if lines[i].strip()]
        if filled:
            first, last = filled[0], filled[-1]
            heading = " > ".join(title for _, title in path)
            text = "\n".join(lines[first : last + 1])
            sections.append(Section(text, heading, None, first + 1, last + 1))

    for index in sorted(headings):
        flush(index)
        level, title = headings[index]
        path = [p for p in path if p[0] < level] + [(level, title)]
        body_start = index + 1
    flush(len(lines))
    return sections


def _load_markdown(path: Path) -> list[Section]:
    from markdown_it import MarkdownIt

    text = read_text(path)
    lines = text.splitlines()
    headings: dict[int, tuple[int, str]] = {}
    tokens = MarkdownIt("commonmark").parse(text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            first, last = token.map
            title = tokens[i + 1].content.strip()
            headings[first] = (int(token.tag[1]), title)
            if last - first == 2:  # a setext heading: its underline is not body text
                lines[first + 1] = ""
    return _headed_sections(lines, headings)


_REST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")


def _load_rest(path: Path) -> list[Section]:
    lines = read_text(path).splitlines()
    headings: dict[int, tuple[int, str]] = {}
    levels: list[str] = []
    i = 0
    while i < len(lines) - 1:
        title, under = lines[i].strip(), lines[i + 1]
        over = i > 0 and bool(_REST_ADORNMENT.match(lines[i - 1]))
        if title and not _REST_ADORNMENT.match(lines[i]) and _REST_ADORNMENT.match(under):
            style = ("o" if over else "u") + under.strip()[0]
            if style not in levels:
                levels.append(style)
            headings[i] = (levels.index(style) + 1, title)
            lines[i + 1] = ""
            if over:
                lines[i - 1] = ""
            i += 2
            continue
        i += 1
    return _headed_sections(lines, headings)
