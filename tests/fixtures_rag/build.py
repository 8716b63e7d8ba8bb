"""Builders for binary test documents (PDF, DOCX) and bad files, made in the test itself."""

from __future__ import annotations

import shutil
from pathlib import Path

DOCS = Path(__file__).parent / "docs"


def make_pdf(path: Path, pages: list[str]) -> Path:
    """Write a minimal valid PDF with one line of Helvetica text per page."""
    objects: list[bytes] = []
    count = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    font = 3 + 2 * count
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(
            b"<< /Length "
            + str(len(content)).encode()
            + b" >>\nstream\n"
            + content
            + b"\nendstream"
        )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path.write_bytes(bytes(out))
    return path


def make_encrypted_pdf(path: Path) -> Path:
    """Write a password-protected PDF."""
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_suffix(".plain.pdf"), ["secret page"])
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt("hunter2")
    with path.open("wb") as fh:
        writer.write(fh)
    plain.unlink()
    return path


def make_docx(path: Path) -> Path:
    """Write a DOCX with a heading, a paragraph, a bulleted item and a table."""
    import docx

    document = docx.Document()
    document.add_heading("Expense policy", level=1)
    document.add_paragraph("Employees may claim travel costs within thirty days of the trip.")
    document.add_paragraph("Keep every receipt.", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Taxi"
    table.cell(0, 1).text = "reimbursed up to 40 euros"
    table.cell(1, 0).text = "Hotel"
    table.cell(1, 1).text = "reimbursed up to 150 euros a night"
    document.save(str(path))
    return path


def mixed_folder(root: Path) -> Path:
    """A folder of good documents of every format plus hidden, bad and unsupported files."""
    root.mkdir(parents=True, exist_ok=True)
    for item in DOCS.iterdir():
        shutil.copy(item, root / item.name)
    make_pdf(root / "lighthouse.pdf", ["Lighthouse logbook", "Volcanic soil drains quickly"])
    make_docx(root / "expenses.docx")
    (root / ".secret.txt").write_text("hidden file, never indexed")
    (root / "empty.txt").write_text("")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (root / "broken.docx").write_bytes(b"this is not a zip file")
    (root / "image.png").write_bytes(b"\x89PNG\r\n")
    make_encrypted_pdf(root / "locked.pdf")
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to(root / "loop", target_is_directory=True)
    (root / "self.md").symlink_to(root / "self.md")
    return root
