"""Loaders, chunking, discovery, keyword queries, fusion and citations: pure, no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.rag.answer import build_messages, citations
from assistant.rag.catalog import keyword_query
from assistant.rag.chunking import chunk_sections
from assistant.rag.discover import discover
from assistant.rag.fusion import convex, rrf
from assistant.rag.index import Hit
from assistant.rag.loaders import LoadError, Section, load
from tests.fixtures_rag.build import DOCS, make_docx, make_encrypted_pdf, make_pdf


def test_markdown_sections_keep_heading_path_and_exact_lines() -> None:
    chunks = chunk_sections(load(DOCS / "kettle.md"))
    assert [(c.heading, c.line_start, c.line_end) for c in chunks] == [
        ("Kettle manual", 3, 3),
        ("Kettle manual > Descaling", 7, 8),
        ("Kettle manual > Safety", 12, 12),
    ]
    lines = (DOCS / "kettle.md").read_text().splitlines()
    assert chunks[1].text == "\n".join(lines[6:8])


def test_rest_underlined_titles_become_nested_headings() -> None:
    chunks = chunk_sections(load(DOCS / "garden.rst"))
    assert [(c.heading, c.line_start, c.line_end) for c in chunks] == [
        ("Garden notes > Watering tomatoes", 7, 8),
        ("Garden notes > Compost", 13, 13),
    ]


def test_html_drops_scripts_and_navigation_and_keeps_headings() -> None:
    chunks = chunk_sections(load(DOCS / "bikes.html"))
    assert [c.heading for c in chunks] == [
        "Bicycle care > Chain lubrication",
        "Bicycle care > Tyre pressure",
    ]
    text = "\n".join(c.text for c in chunks)
    assert "tracking" not in text and "Home | About" not in text
    assert chunks[1].text == "Road tyres: 80 to 100 psi.\nMountain bike tyres: 25 to 35 psi."
    assert [(c.line_start, c.line_end) for c in chunks] == [(7, 8), (10, 10)]


def test_html_lines_point_at_the_source_through_tags_entities_and_pre(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body>\n<h1>Guide</h1>\n<p>Intro text here.</p>\n<p>Fish &amp; chips are\n"
        "<em>very</em> good.</p>\n\n<pre>line one\nline two\nline three</pre>\n"
        "<p>Intro text here.</p>\n</body></html>\n"
    )
    (chunk,) = chunk_sections(load(page))
    assert chunk.text.splitlines()[1] == "Fish & chips are very good."
    section = load(page)[0]
    assert section.line_map == (3, 4, 7, 8, 9, 10)  # a repeated paragraph is found again later
    assert (chunk.line_start, chunk.line_end) == (3, 10)


def test_source_code_keeps_indentation() -> None:
    (chunk,) = chunk_sections(load(DOCS / "invoice.py"))
    assert "\n    net = sum(" in chunk.text
    assert (chunk.line_start, chunk.line_end) == (1, 7)


def test_pdf_sections_carry_page_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", ["Lighthouse logbook", "Volcanic soil drains quickly"])
    assert [(s.page, s.text.strip()) for s in load(pdf)] == [
        (1, "Lighthouse logbook"),
        (2, "Volcanic soil drains quickly"),
    ]


def test_docx_reads_headings_lists_and_tables_in_order(tmp_path: Path) -> None:
    (section,) = load(make_docx(tmp_path / "e.docx"))
    assert section.heading == "Expense policy"
    assert section.text.splitlines() == [
        "Employees may claim travel costs within thirty days of the trip.",
        "Keep every receipt.",
        "Taxi | reimbursed up to 40 euros",
        "Hotel | reimbursed up to 150 euros a night",
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blob.txt", b"\x00\x01binary", "binary file (contains NUL bytes)"),
        ("latin1.md", "café".encode("latin-1"), "not UTF-8 text (bad byte at offset 3)"),
        ("broken.docx", b"not a zip", "cannot read DOCX"),
        ("broken.pdf", b"%PDF-1.4 garbage", "cannot read PDF"),
        ("blank.md", b"\n\n   \n", "no text found"),
        ("photo.png", b"\x89PNG", "unsupported file type .png"),
    ],
)
def test_bad_files_raise_a_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as info:
        load(path)
    assert str(info.value).startswith(reason)


def test_encrypted_pdf_and_huge_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="encrypted PDF"):
        load(make_encrypted_pdf(tmp_path / "locked.pdf"))
    big = tmp_path / "big.txt"
    big.write_text("word " * 300)
    with pytest.raises(LoadError, match="file too large"):
        load(big, max_bytes=1000)


def test_long_lines_split_into_overlapping_windows_with_the_same_line() -> None:
    line = " ".join(str(i) for i in range(50))
    chunks = chunk_sections([Section(f"{line}\n\nlast", line_start=10)], max_words=20, overlap=5)
    assert [c.text.split()[0] for c in chunks] == ["0", "15", "30", "last"]
    assert [len(c.text.split()) for c in chunks] == [20, 20, 20, 1]
    assert [(c.line_start, c.line_end) for c in chunks] == [(10, 10)] * 3 + [(12, 12)]


def test_chunks_never_exceed_the_word_budget() -> None:
    text = "\n".join(f"line {i} " + "word " * (i % 30) for i in range(200))
    chunks = chunk_sections([Section(text, line_start=1)], max_words=160)
    assert all(len(c.text.split()) <= 160 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == len(text.split())


def test_discover_skips_hidden_unsupported_and_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\ntext")
    (tmp_path / ".hidden.md").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / "photo.png").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "sub" / "up").symlink_to(tmp_path / "sub", target_is_directory=True)
    (tmp_path / "self.txt").symlink_to(tmp_path / "self.txt")
    found = {str(f.path.relative_to(tmp_path)): f.skip for f in discover([str(tmp_path)])}
    assert found == {
        ".git": "hidden folder",
        ".hidden.md": "hidden file",
        "a.md": "",
        "photo.png": "unsupported file type .png",
        "self.txt": "cannot read: Too many levels of symbolic links",
        "sub/b.txt": "",
        "sub/up": "symlink loop (folder already visited)",
    }
    globbed = [f.path.name for f in discover([str(tmp_path / "**" / "*.txt")])]
    assert sorted(globbed) == ["b.txt", "self.txt"]


def test_keyword_query_ors_terms_without_stopwords() -> None:
    assert keyword_query("How do I read a file, line by line?") == '"read" OR "file" OR "line"'
    assert keyword_query("the of and") == ""


def test_rrf_weights_and_convex_fusion() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    keyword = [("c", 12.0), ("b", 6.0)]
    assert [i for i, _ in rrf([(dense, 1.0), (keyword, 1.0)])] == ["c", "b", "a"]
    assert [i for i, _ in rrf([(dense, 1.0), (keyword, 0.0)])] == ["a", "b", "c"]
    fused = convex(dense, keyword, 0.3)
    assert [i for i, _ in fused] == ["a", "b", "c"]
    assert fused[1][1] == pytest.approx(0.7 * 0.875 + 0.3 * 0.0)
    assert fused[2][1] == pytest.approx(0.3)


def test_citations_keep_only_existing_sources_in_order() -> None:
    assert citations("Use vinegar [2]. Rinse [1, 2] and [7].", 3) == [2, 1]
    assert citations("No citations here.", 3) == []


def test_prompt_numbers_sources_with_their_location() -> None:
    hits = [
        Hit("k.md", None, 7, 8, "Kettle > Descaling", 1.0, "Use vinegar.", 0.7),
        Hit("l.pdf", 2, None, None, "", 0.5, "Soil.", 0.4),
    ]
    messages = build_messages("How to descale?", hits)
    assert messages[1]["content"] == (
        "Sources:\n\n[1] k.md:7-8 (Kettle > Descaling)\nUse vinegar.\n\n"
        "[2] l.pdf, page 2\nSoil.\n\nQuestion: How to descale?"
    )
