"""Bad and hostile input to the document loaders, chunker and ingest: one clear reason each.

Nothing lost (text in divs, non-ASCII query words), nothing hangs (zip and PDF bombs, fifos,
one enormous line), nothing printed raw (escape sequences in file names).
"""

from __future__ import annotations

import os
import re
import time
import zipfile
import zlib
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from assistant.cli import cli
from assistant.rag.catalog import Catalog, keyword_query
from assistant.rag.chunking import MAX_CHARS, Chunk, chunk_sections
from assistant.rag.discover import discover, printable
from assistant.rag.loaders import Limits, LoadError, Section, load
from tests.fixtures_rag.build import make_docx, make_pdf

# -- HTML: text outside p/h/li/td/pre -----------------------------------------------------


def test_html_text_in_a_div_is_indexed(tmp_path: Path) -> None:
    page = tmp_path / "secret.html"
    page.write_text("<html><body><div>The password is quince.</div></body></html>")
    assert [(s.text, s.line_start, s.line_end) for s in load(page)] == [
        ("The password is quince.", 1, 1)
    ]


def test_html_div_after_a_paragraph_is_kept(tmp_path: Path) -> None:
    page = tmp_path / "mixed.html"
    page.write_text("<p>x</p><div>y</div>")
    assert [s.text for s in load(page)] == ["x\ny"]


def test_html_divs_and_spans_keep_heading_paths_and_source_lines(tmp_path: Path) -> None:
    page = tmp_path / "guide.html"
    page.write_text(
        "<html><head><script>var guide = 'Welcome';</script></head><body>\n"  # 1
        "<h1>Guide</h1>\n"  # 2
        '<div class="intro">Welcome <span>to the</span> guide.</div>\n'  # 3
        "<h2>Setup</h2>\n"  # 4
        "<div><div>Install the <b>kett</b>le &amp; plug.</div>\n"  # 5
        "Then fill it<br>to the line.</div>\n"  # 6
        "<table><tr><td>a</td><td>0</td></tr>\n"  # 7
        "<tr><td>b</td><td>0</td></tr></table>\n"  # 8
        "<span>Loose text</span>\n"  # 9
        "</body></html>\n"
    )
    sections = load(page)
    assert [(s.heading, s.text, s.line_map) for s in sections] == [
        ("Guide", "Welcome to the guide.", (3,)),
        (
            "Guide > Setup",
            "Install the kettle & plug.\nThen fill it\nto the line.\na | 0\nb | 0\nLoose text",
            (5, 6, 6, 7, 8, 9),
        ),
    ]


def test_html_table_rows_are_lines_with_their_cells_named_by_column(tmp_path: Path) -> None:
    # A row read across, as a browser shows it, each cell under a header row named by its
    # column: "boolean | Storage Size: 1 byte" answers "how much space does a boolean take".
    page = tmp_path / "types.html"
    page.write_text(
        "<p>Types:</p>\n"  # 1
        "<table><thead><tr><th>Name</th><th>Storage Size</th><th>Range</th></tr></thead>\n"  # 2
        "<tbody><tr><td>smallint</td><td>2 bytes</td><td>-32768 to +32767</td></tr>\n"  # 3
        '<tr><td colspan="2">spanned</td><td>x</td></tr></tbody></table>\n'  # 4
        "<table><tr><td>plain</td><td>cells</td></tr></table>\n"  # 5
    )
    assert [(s.text, s.line_map) for s in load(page)] == [
        (
            "Types:\nName | Storage Size | Range\n"
            "smallint | Storage Size: 2 bytes | Range: -32768 to +32767\n"
            "spanned | x\nplain | cells",
            (1, 2, 3, 4, 5),
        )
    ]


def test_html_drops_docbook_navigation_bars(tmp_path: Path) -> None:
    # PostgreSQL's and Debian's manuals repeat "Prev Up Next" tables on every page.
    page = tmp_path / "manual.html"
    page.write_text(
        '<div class="navheader"><table><tr><th>20.3. Connections</th></tr>'
        "<tr><td>Prev</td><td>Next</td></tr></table></div>\n"
        "<p>Specifies the port.</p>\n"
        '<div class="navfooter"><table><tr><td>Prev</td><td>Home</td></tr></table></div>\n'
        '<div role="navigation">Breadcrumbs</div>'
    )
    assert [s.text for s in load(page)] == ["Specifies the port."]


def test_html_drops_the_site_header_but_keeps_an_articles_own(tmp_path: Path) -> None:
    page = tmp_path / "post.html"
    page.write_text(
        "<body><header>Site name</header><nav>Home</nav>\n"
        "<article><header><h1>Post title</h1><span>by Ann</span></header>\n"
        "<div>Body text.</div><footer>Filed under tea</footer></article>\n"
        "<footer>Copyright</footer></body>"
    )
    assert [(s.heading, s.text, s.line_map) for s in load(page)] == [
        ("Post title", "by Ann\nBody text.\nFiled under tea", (2, 3, 3))
    ]


# -- containers: what a file unpacks to is bounded ----------------------------------------


def _docx_bomb(path: Path, xml_bytes: int) -> Path:
    """A real DOCX whose document.xml is ``xml_bytes`` of valid, highly repetitive XML."""
    plain = make_docx(path.with_suffix(".plain.docx"))
    head = b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
    head += b'wordprocessingml/2006/main"><w:body>'
    tail = b"</w:body></w:document>"
    paragraph = b"<w:p><w:r><w:t>boom</w:t></w:r></w:p>"
    block = paragraph * (1024 * 1024 // len(paragraph))
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as bomb:
        for member in source.infolist():
            if member.filename != "word/document.xml":
                bomb.writestr(member, source.read(member))
        member = zipfile.ZipInfo("word/document.xml")
        member.compress_type = zipfile.ZIP_DEFLATED
        with bomb.open(member, "w") as out:
            # Streamed, so building it never holds the whole XML in memory.
            out.write(head)
            for _ in range(xml_bytes // len(block) + 1):
                out.write(block)
            out.write(tail)
    plain.unlink()
    return path


def test_docx_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    bomb = _docx_bomb(tmp_path / "bomb.docx", 70 * 1024 * 1024)
    assert bomb.stat().st_size < 1024 * 1024  # small on disk: the size check alone passes
    started = time.perf_counter()
    with pytest.raises(LoadError) as info:
        load(bomb)
    assert time.perf_counter() - started < 5
    assert re.fullmatch(
        r"document XML unpacks to \d+ bytes \(> 67108864\); "
        r"a zip bomb or an unusually large document",
        str(info.value),
    )


def test_docx_limits_on_total_size_and_member_count(tmp_path: Path) -> None:
    document = make_docx(tmp_path / "e.docx")
    assert load(document)  # well within the defaults
    with pytest.raises(LoadError, match=r"^archive unpacks to \d+ bytes \(> 1000\)"):
        load(document, limits=Limits(max_unpacked_bytes=1000))
    count = len(zipfile.ZipFile(document).infolist())
    with pytest.raises(LoadError, match=rf"^archive has too many members \({count} > 3\)$"):
        load(document, limits=Limits(max_members=3))


def test_pdf_limits_on_pages_and_extracted_text(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "three.pdf", ["first page", "second page", "third page"])
    with pytest.raises(LoadError, match=r"^PDF has too many pages \(3 > 2\)$"):
        load(pdf, limits=Limits(max_pages=2))
    with pytest.raises(LoadError, match=r"^PDF text too large \(over 15 characters by page 2 "):
        load(pdf, limits=Limits(max_text_chars=15))


def test_pdf_stream_bomb_is_a_clear_failure(tmp_path: Path) -> None:
    """A content stream inflating to 80 MB: pypdf stops it; the reason says it is the PDF."""
    text = b"BT /F1 12 Tf 72 720 Td (boom) Tj ET\n"
    stream = zlib.compress(text + b" " * (80 * 1024 * 1024), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    pdf = tmp_path / "bomb.pdf"
    pdf.write_bytes(bytes(out))
    started = time.perf_counter()
    with pytest.raises(LoadError) as info:
        load(pdf)
    assert re.fullmatch(
        r"PDF unpacks past a safety limit in page 1 \(Limit reached while decompressing\. "
        r"\d+ bytes remaining\.\); a PDF bomb or an unusually large page",
        str(info.value),
    )
    assert time.perf_counter() - started < 10


# -- chunking: size, not only words -------------------------------------------------------


def test_a_349_kb_line_without_spaces_is_cut_within_the_bound(tmp_path: Path) -> None:
    source = tmp_path / "minified.py"
    code = "x=1;y=2;print(x+y);" * 18400
    middle = len(code) // 2
    source.write_text(code[:middle] + "PASSWORD='quince';" + code[middle:] + "\n")
    assert source.stat().st_size > 349_000
    started = time.perf_counter()
    chunks = chunk_sections(load(source))
    assert time.perf_counter() - started < 2
    assert max(len(c.text) for c in chunks) <= MAX_CHARS
    assert {(c.line_start, c.line_end) for c in chunks} == {(1, 1)}
    assert sum("PASSWORD='quince';" in c.text for c in chunks) >= 1  # not cut in two
    # Windows overlap a little, so nothing is lost at a cut, and the index stays small.
    assert sum(len(c.text) for c in chunks) < 1.2 * source.stat().st_size


def test_a_long_word_is_cut_into_overlapping_character_windows() -> None:
    word = "0123456789" * 12
    chunks = chunk_sections([Section(f"head {word} tail", line_start=4)], max_chars=50)
    # 20 words of overlap out of 160 is 50 * 20 // 160 = 6 characters.
    assert [c.text for c in chunks] == ["head", word[0:50], word[44:94], word[88:] + " tail"]
    assert all(c == Chunk(c.text, "", None, 4, 4) for c in chunks)


def test_lines_are_grouped_within_the_character_bound() -> None:
    text = "\n".join(["a" * 30, "b" * 30, "c" * 30, "d" * 30])
    chunks = chunk_sections([Section(text, line_start=1)], max_chars=62)
    assert [(c.text, c.line_start, c.line_end) for c in chunks] == [
        ("a" * 30 + "\n" + "b" * 30, 1, 2),
        ("c" * 30 + "\n" + "d" * 30, 3, 4),
    ]


# -- not a regular file, and names printed safely -----------------------------------------


def test_a_fifo_and_a_folder_say_what_they_are(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    folder = tmp_path / "notes.md"
    folder.mkdir()
    with pytest.raises(LoadError, match=r"^not a regular file: a named pipe \(fifo\)$"):
        load(fifo)  # returns at once: nothing waits for a writer
    with pytest.raises(LoadError, match=r"^is a folder, not a file$"):
        load(folder)
    assert [(f.path.name, f.skip) for f in discover([str(fifo)])] == [
        ("pipe.txt", "not a regular file: a named pipe (fifo)")
    ]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("notes.md", "notes.md"),
        ("café 東京.md", "café 東京.md"),
        ("evil\x1b[2J.md", "evil\\x1b[2J.md"),
        ("two\nlines\t.md", "two\\nlines\\t.md"),
        ("gnp.\u202etxt", "gnp.\\u202etxt"),
        ("bad\udcffbyte.md", "bad\\xffbyte.md"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
    ],
)
def test_printable_escapes_control_characters_only(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_ingest_reports_each_bad_file_and_goes_on(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Secrets\n\nThe password is quince.\n")
    (folder / "page.html").write_text("<html><body><div>The kettle is blue.</div></body></html>")
    _docx_bomb(folder / "bomb.docx", 70 * 1024 * 1024)
    (folder / "evil\x1b[2J.txt").write_text("")
    os.mkfifo(folder / "pipe.txt")
    runner = CliRunner()
    started = time.perf_counter()
    result = runner.invoke(cli, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 120
    assert "\x1b" not in result.output
    lines = result.output.splitlines()
    assert f"failed: {folder}/evil\\x1b[2J.txt: empty file" in lines
    assert any(
        line.startswith(f"failed: {folder}/bomb.docx: document XML unpacks to ") for line in lines
    )
    skipped = f"skipped  {folder}/pipe.txt  not a regular file: a named pipe (fifo)"
    assert any(line.endswith(skipped) for line in lines)
    assert lines[-3].startswith("indexed 2 files (2 chunks), 0 unchanged, 1 skipped, 2 failed")
    listing = runner.invoke(cli, ["sources"]).output
    assert "\x1b" not in listing and "evil\\x1b[2J.txt" in listing
    found = runner.invoke(cli, ["search", "kettle blue", "--mode", "keyword", "--json"])
    assert '"The kettle is blue."' in found.output


# -- keyword queries keep every script ----------------------------------------------------


def test_keyword_query_keeps_non_ascii_words() -> None:
    assert keyword_query("Où est le café crème?") == '"où" OR "est" OR "le" OR "café" OR "crème"'
    assert keyword_query("東京タワー の 高さ") == '"東京タワー" OR "の" OR "高さ"'
    assert keyword_query("cafe\u0301") == '"café"'  # a decomposed accent is composed first


def test_keyword_search_finds_accented_words_in_sqlite() -> None:
    catalog = Catalog(sqlite_utils.Database(memory=True))
    chunks = [Chunk("Un café au lait", "", None, 1, 1), Chunk("A cafeteria", "", None, 2, 2)]
    catalog.replace_chunks("menu.txt", "digest", ["c1", "c2"], chunks, 0.0)
    assert [i for i, _ in catalog.keyword_search("café", 5)] == ["c1"]
    assert [i for i, _ in catalog.keyword_search("CAFÉ", 5)] == ["c1"]
