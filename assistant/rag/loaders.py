"""Document loaders: a file in, a list of :class:`Section` out (text with its provenance).

Each loader keeps what a citation needs: the page (PDF), the 1-based line span in the source
file (text formats) and the heading path. Loaders raise :class:`LoadError` with a reason a
user can act on; they never print.
"""

from __future__ import annotations

import re
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
    """Return whether a loader exists for the file's suffix."""
    return _loader_for(path) is not None


def load(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[Section]:
    """Read ``path`` into sections.

    Raises:
        LoadError: unsupported, too big, empty, binary, not UTF-8, encrypted or corrupt.
    """
    loader = _loader_for(path)
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    size = path.stat().st_size
    if size == 0:
        raise LoadError("empty file")
    if size > max_bytes:
        raise LoadError(f"file too large ({size} bytes > {max_bytes})")
    sections = [s for s in loader(path) if s.text.strip()]
    if not sections:
        raise LoadError("no text found")
    return sections


def _loader_for(path: Path) -> Callable[[Path], list[Section]] | None:
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return _load_markdown
    if suffix in REST_SUFFIXES:
        return _load_rest
    if suffix in HTML_SUFFIXES:
        return _load_html
    if suffix == ".pdf":
        return _load_pdf
    if suffix == ".docx":
        return _load_docx
    if suffix in TEXT_SUFFIXES or suffix in CODE_SUFFIXES:
        return _load_plain
    return None


def read_text(path: Path) -> str:
    """Return the file's text; raise LoadError for binary or non-UTF-8 content."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (bad byte at offset {exc.start})") from exc


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


def _load_html(path: Path) -> list[Section]:
    from selectolax.lexbor import LexborHTMLParser

    raw = read_text(path)
    locate = _SourceLocator(raw)
    tree = LexborHTMLParser(raw)
    for node in tree.css("script, style, nav, header, footer, noscript"):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("[role=main]") or tree.body
    if root is None:
        return []
    sections: list[Section] = []
    path_: list[tuple[int, str]] = []
    parts: list[str] = []
    lines: list[int] = []  # the source line of each line of parts
    blocks = "h1, h2, h3, h4, h5, h6, p, li, pre, dt, dd, td, th, blockquote"

    def flush() -> None:
        text = "\n".join(parts)
        if text.strip():
            sections.append(
                Section(
                    text,
                    " > ".join(t for _, t in path_),
                    line_start=lines[0],
                    line_end=lines[-1],
                    line_map=tuple(lines),
                )
            )
        parts.clear()
        lines.clear()

    for node in root.css(blocks):
        tag = node.tag or ""
        if tag in {"li", "p", "dd", "dt", "td", "th"} and _inside(node, {"li", "td", "th", "dd"}):
            continue  # nested block: its text is already part of the enclosing one
        text = node.text(separator=" " if tag != "pre" else "", strip=tag != "pre")
        text = text.replace("¶", "").strip()
        if not text:
            continue
        line = locate(text)
        if tag[0] == "h" and tag[1:].isdigit():
            flush()
            level = int(tag[1:])
            path_ = [p for p in path_ if p[0] < level] + [(level, text)]
        else:
            for n, piece in enumerate(text.split("\n")):
                parts.append(piece)
                lines.append(line + n)  # a <pre> keeps its lines
    flush()
    return sections


class _SourceLocator:
    """Finds the 1-based source line of each block's text, in document order.

    The parser keeps no positions, so the first words of a block are searched for in the
    raw HTML after the previous block (tags, entities and spacing may sit between them).
    A block not found gets the line of the one before.
    """

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.cursor = 0
        self.line = 1

    def __call__(self, text: str) -> int:
        words = re.findall(r"\w+", text)[:6]
        if words:
            gap = r"(?:[^\w<&]|<[^>]*>|&#?\w+;)*?"
            found = re.compile(gap.join(map(re.escape, words))).search(self.raw, self.cursor)
            if found is not None:
                self.line += self.raw.count("\n", self.cursor, found.start())
                self.cursor = found.start()
        return self.line


def _inside(node: object, tags: set[str]) -> bool:
    parent = getattr(node, "parent", None)
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _load_pdf(path: Path) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise LoadError("encrypted PDF (remove the password first)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(f"cannot read PDF: {exc}") from exc
    return [Section(text, page=number) for number, text in enumerate(pages, 1)]


def _load_docx(path: Path) -> list[Section]:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"cannot read DOCX: {exc}") from exc
    sections: list[Section] = []
    path_: list[tuple[int, str]] = []
    parts: list[str] = []

    def flush() -> None:
        if any(p.strip() for p in parts):
            sections.append(Section("\n".join(parts).strip(), " > ".join(t for _, t in path_)))
        parts.clear()

    # Walk the body in order so tables stay where they are (doc.paragraphs skips them).
    for element in document.element.body.iterchildren():
        if element.tag == qn("w:p"):
            paragraph = Paragraph(element, document)
            style = paragraph.style.name if paragraph.style is not None else ""
            text = paragraph.text.strip()
            if style.startswith("Heading") and style[7:].strip().isdigit() and text:
                flush()
                level = int(style[7:].strip())
                path_ = [p for p in path_ if p[0] < level] + [(level, text)]
            elif style == "Title" and text:
                flush()
                path_ = [(0, text)]
            elif text:
                parts.append(text)
        elif element.tag == qn("w:tbl"):
            table = Table(element, document)
            for row in table.rows:
                cells = [cell.text.strip() for cell in row.cells]
                parts.append(" | ".join(c for c in cells if c))
    flush()
    return sections
