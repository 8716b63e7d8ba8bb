"""PDF and DOCX loaders, bounded by what the file unpacks to, not only by its size on disk.

A container can be small and expand enormously: a 1 MB DOCX (a zip) can hold 400 MB of XML,
which python-docx would parse whole (gigabytes of memory, minutes of CPU). A DOCX's members
are measured from the zip directory before anything is unpacked; zipfile never inflates a
member past the size the directory declares (it fails the CRC check instead), so those
sizes are a real bound. A PDF is bounded by page count and by the text it yields; pypdf
bounds each decompressed stream itself.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from assistant.rag.loaders import Limits, LoadError, Section


def load_pdf(path: Path, limits: Limits) -> list[Section]:
    """Read a PDF into one section per page."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    sections: list[Section] = []
    total = 0
    number = 0
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise LoadError("encrypted PDF (remove the password first)")
        count = len(reader.pages)
        if count > limits.max_pages:
            raise LoadError(f"PDF has too many pages ({count} > {limits.max_pages})")
        for number, page in enumerate(reader.pages, 1):
            text = page.extract_text() or ""
            total += len(text)
            if total > limits.max_text_chars:
                raise LoadError(
                    f"PDF text too large (over {limits.max_text_chars} characters by page "
                    f"{number} of {count})"
                )
            sections.append(Section(text, page=number))
    except LoadError:
        raise
    except LimitReachedError as exc:  # pypdf's own bound on a stream, array or tree
        where = f"page {number}" if number else "its structure"
        raise LoadError(
            f"PDF unpacks past a safety limit in {where} ({exc}); "
            "a PDF bomb or an unusually large page"
        ) from exc
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise LoadError(f"cannot read PDF: {exc}") from exc
    return sections


def check_zip(path: Path, limits: Limits) -> None:
    """Refuse a zip whose members would unpack past ``limits`` (a zip bomb).

    A file that is not a zip at all is left to the format's own reader, whose message
    says what is wrong with it.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    if len(members) > limits.max_members:
        raise LoadError(f"archive has too many members ({len(members)} > {limits.max_members})")
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise LoadError(
            f"archive unpacks to {total} bytes (> {limits.max_unpacked_bytes}); "
            "a zip bomb or an unusually large document"
        )
    xml = sum(m.file_size for m in members if m.filename.endswith((".xml", ".rels")))
    if xml > limits.max_xml_bytes:
        raise LoadError(
            f"document XML unpacks to {xml} bytes (> {limits.max_xml_bytes}); "
            "a zip bomb or an unusually large document"
        )


def load_docx(path: Path, limits: Limits) -> list[Section]:
    """Read a DOCX into sections (one per heading), tables in place."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_zip(path, limits)
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
