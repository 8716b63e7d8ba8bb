"""HTML to sections: every visible text run, under its heading path, with its source line.

Real pages keep most of their text in ``div`` and ``span``, not in ``p``, so the text is
gathered from the whole tree: a block-level element (or ``<br>``) ends a line and inline
elements run together, as a browser lays them out; a table row is one line, its cells
joined by " | ", and a cell under a header row named by its column ("boolean | Storage
Size: 1 byte"), so a row stays a sentence an answer can be quoted from.
Scripts, styles and page furniture (navigation, header, footer, DocBook's navigation bars)
are dropped. The walk uses its own stack, so a deeply nested
page cannot exhaust Python's recursion limit.
"""

from __future__ import annotations

import bisect
import html
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.rag.loaders import Section, read_text

# Not shown, or shown on every page of a site (so they say nothing about this one).
_DROPPED = (
    "script, style, template, noscript, iframe, nav, [hidden], [role=navigation], "
    ".navheader, .navfooter, .breadcrumb, .breadcrumbs"
)
# The site's header and footer are furniture; an article's own (its title, its author) is not.
_FURNITURE = "header, footer"
_CONTENT = frozenset({"article", "main", "section"})
_CELLS = frozenset({"td", "th"})  # inline within their row, separated by " | "
# Around a column's name put before a cell: shown, but not looked for in the source.
_LABEL = re.compile("\ue000([^\ue001]*)\ue001")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements a browser puts on their own line(s); everything else flows inline.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
    "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "form", "hgroup", "hr", "html", "legend", "li", "main", "menu", "ol", "optgroup",
    "option", "p", "search", "section", "summary", "table", "tbody", "tfoot", "thead", "tr",
    "ul",
})  # fmt: skip


def load_html(path: Path) -> list[Section]:
    """Read an HTML file into sections (one per heading)."""
    return html_sections(read_text(path))


def html_sections(raw: str) -> list[Section]:
    """Split HTML source into sections; each text line keeps its 1-based source line."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(raw)
    for node in tree.css(_DROPPED):
        node.decompose()
    for node in tree.css(_FURNITURE):
        if not _inside(node, _CONTENT):
            node.decompose()
    root = tree.css_first("main") or tree.css_first("[role=main]") or tree.body
    if root is None:
        return []
    locate = _SourceLocator(raw)
    labels = _column_labels(root)
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    parts: list[str] = []
    lines: list[int] = []  # the source line of each line of parts

    def flush() -> None:
        if any(p.strip() for p in parts):
            heading = " > ".join(t for _, t in path)
            text = "\n".join(parts)
            span = tuple(lines)
            sections.append(Section(text, heading, None, span[0], span[-1], line_map=span))
        parts.clear()
        lines.clear()

    for tag, shown in _blocks(root, labels):
        shown = shown.replace("¶", "")  # Sphinx's permalink marks
        shown = shown.strip() if tag == "pre" else " ".join(shown.split())
        if not _LABEL.sub("", shown).strip():
            continue
        line = locate(_LABEL.sub("", shown))
        text = _LABEL.sub(r"\1", shown)
        if tag in _HEADINGS:
            flush()
            level = _HEADINGS[tag]
            path = [p for p in path if p[0] < level] + [(level, text)]
        else:
            for n, piece in enumerate(text.split("\n")):
                parts.append(piece)
                lines.append(line + n)  # a <pre> keeps its lines
    flush()
    return sections


def _column_labels(root: Any) -> dict[int, str]:
    """The column name of every data cell of a table whose first row is all ``th``.

    Keyed by the cell's ``mem_id``; the first column (what a row is about) is not named, nor
    are the cells of a row whose cell count differs from the header's (spanned cells) or of a
    table holding another table.
    """
    labels: dict[int, str] = {}
    for table in root.css("table"):
        if len(table.css("table")) > 1:  # css() matches the table itself too
            continue
        rows = table.css("tr")
        head = _cells(rows[0]) if rows else []
        if len(head) < 2 or any(cell.tag != "th" for cell in head):
            continue
        names = [" ".join(cell.text(deep=True).split()) for cell in head]
        for row in rows[1:]:
            cells = _cells(row)
            if len(cells) != len(names):
                continue
            for name, cell in zip(names[1:], cells[1:], strict=True):
                if name:
                    labels[cell.mem_id] = name
    return labels


def _cells(row: Any) -> list[Any]:
    return [child for child in row.iter() if child.tag in _CELLS]


def _blocks(root: Any, labels: dict[int, str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(tag, text)`` in document order: headings, ``pre`` and runs of flowing text.

    A cell named in ``labels`` opens with its column's name, marked as :data:`_LABEL`.
    """
    labels = labels or {}
    inline: list[str] = []
    stack: list[tuple[Any, bool]] = [(root, False)]  # (node, leaving it)
    while stack:
        node, leaving = stack.pop()
        tag = node.tag or ""
        if tag == "-text":
            inline.append(node.text_content or "")
            continue
        ends_line = leaving or tag in _BLOCKS or tag in _HEADINGS or tag in ("pre", "br")
        if ends_line and inline:  # the text flowing up to here is one line
            yield "text", "".join(inline)
            inline.clear()
        if leaving or tag.startswith("-"):  # comments and other non-elements
            continue
        if tag in _CELLS:
            if "".join(inline).strip():
                inline.append(" | ")
            label = labels.get(node.mem_id)
            if label:
                inline.append(f"\ue000{label}: \ue001")
        if tag in _HEADINGS or tag == "pre":
            yield tag, node.text(deep=True, separator="", strip=False)
            continue
        if tag in _BLOCKS:
            stack.append((node, True))
        children = list(node.iter(include_text=True))
        stack.extend((child, False) for child in reversed(children))
    if inline:
        yield "text", "".join(inline)


def _inside(node: Any, tags: frozenset[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


# Markup that shows no text: comments, scripts, styles and the title (with their content),
# tags, and entities (decoded). A "<" not followed by a name is text, as in a browser.
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style|title)\b.*?(?:</\1\s*>|\Z)|<[a-z/!?][^>]*>?|&#?\w+;",
    re.S | re.I,
)
# How far past the previous block a block's words are looked for: a block that is not
# found (its text differs from the source) must not cost a scan of the whole page.
_WINDOW = 256 * 1024


class _SourceLocator:
    """Finds the 1-based source line of each block's text, in document order.

    The parser keeps no positions. The source is reduced once to the text it shows (markup
    removed, entities decoded), remembering where each source newline fell; the first words
    of a block are then searched for after the previous block. A block not found gets the
    line of the one before.
    """

    def __init__(self, raw: str) -> None:
        shown: list[str] = []
        self.breaks: list[int] = []  # offset in the shown text of every source newline
        size = 0
        position = 0
        for match in itertools.chain(_MARKUP.finditer(raw), [None]):
            start = match.start() if match is not None else len(raw)
            plain = raw[position:start]
            self._note_breaks(plain, size, per_char=True)
            shown.append(plain)
            size += len(plain)
            if match is None:
                break
            markup = match.group()
            if markup.startswith("&"):
                decoded = html.unescape(markup)
                shown.append(decoded)
                size += len(decoded)
            else:
                self._note_breaks(markup, size, per_char=False)
            position = match.end()
        self.shown = "".join(shown)
        self.cursor = 0
        self.line = 1

    def _note_breaks(self, text: str, offset: int, *, per_char: bool) -> None:
        at = text.find("\n")
        while at != -1:
            self.breaks.append(offset + at if per_char else offset)
            at = text.find("\n", at + 1)

    def __call__(self, text: str) -> int:
        words = [m.group() for m in itertools.islice(re.finditer(r"\w+", text), 6)]
        if words:
            pattern = re.compile(r"\W*?".join(map(re.escape, words)))
            found = pattern.search(self.shown, self.cursor, self.cursor + _WINDOW)
            if found is not None:
                self.cursor = found.end()  # the next block starts after this one
                self.line = 1 + bisect.bisect_right(self.breaks, found.start())
        return self.line
