"""Property tests of the pure document parsers: no crash, nothing lost, each case quick.

The chunker, the FTS5 query builder (run against a real SQLite FTS5 table, so a query that
SQLite would reject fails here) and the HTML reader get generated input, each example
under a deadline. Examples are few and the database is off, so the file runs in seconds and
leaves nothing behind.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from datetime import timedelta

import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.rag.catalog import MAX_QUERY_TERMS, Catalog, keyword_query
from assistant.rag.chunking import Chunk, chunk_sections
from assistant.rag.html_text import html_sections
from assistant.rag.loaders import Section

QUICK = settings(
    max_examples=80,
    deadline=timedelta(seconds=2),  # generous: the machine running the suite may be busy
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text that stresses the chunker: words, long runs without spaces, odd whitespace.
_PIECES = st.one_of(
    st.text(alphabet="abcdefghij", min_size=1, max_size=8),
    st.text(alphabet="x=;()", min_size=50, max_size=3000),
    st.sampled_from([" ", "  ", "\n", "\n\n\n", "\t", "\r", "\u00a0", "\u2028", "\x0b"]),
    st.text(max_size=20),
)
_TEXT = st.lists(_PIECES, max_size=60).map("".join)


@QUICK
@given(
    text=_TEXT,
    max_words=st.integers(1, 40),
    overlap=st.integers(0, 50),
    max_chars=st.integers(1, 300),
    first_line=st.integers(1, 1000),
)
def test_chunks_stay_within_both_budgets_and_lose_no_word(
    text: str, max_words: int, overlap: int, max_chars: int, first_line: int
) -> None:
    section = Section(text, "H", line_start=first_line)
    chunks = chunk_sections([section], max_words, overlap, max_chars)
    last_line = first_line + text.count("\n")
    for chunk in chunks:
        assert chunk.text.strip()
        assert len(chunk.text) <= max_chars
        assert len(chunk.text.split()) <= max_words
        assert chunk.line_start is not None and chunk.line_end is not None
        assert first_line <= chunk.line_start <= chunk.line_end <= last_line
    # Every word that fits a chunk is in one (windows overlap, so some are in two) ...
    words = [w for line in text.split("\n") for w in line.split()]
    found = Counter(w for c in chunks for w in c.text.split())
    assert not Counter(w for w in words if len(w) <= max_chars) - found
    # ... and the longer ones are cut, not dropped.
    assert sum(len(w) for w in found.elements()) >= sum(len(w) for w in words)


@QUICK
@given(size=st.integers(0, 200_000), max_chars=st.integers(50, 2000))
def test_a_line_without_spaces_is_cut_in_linear_time(size: int, max_chars: int) -> None:
    chunks = chunk_sections([Section("a" * size, line_start=1)], max_chars=max_chars)
    assert all(len(c.text) <= max_chars for c in chunks)
    assert sum(len(c.text) for c in chunks) <= 1.2 * size + max_chars


@functools.cache
def _catalog() -> Catalog:
    """One real FTS5 index with a few rows, shared by every example."""
    catalog = Catalog(sqlite_utils.Database(memory=True))
    texts = ["Un café au lait", "東京タワー の 高さ", "read_file(path) returns text", "AND OR NOT"]
    chunks = [Chunk(t, "", None, n, n) for n, t in enumerate(texts, 1)]
    catalog.replace_chunks("f.txt", "d", [f"c{n}" for n in range(len(texts))], chunks, 0.0)
    return catalog


_QUERY = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(['"', "'", "*", "-", "^", "(", ")", ":", "NEAR", "AND", "OR", "NOT",
                         "café", "東京", "the", "x" * 300, "_", "\x00", "e\u0301"]),
        max_size=200,
    ).map(" ".join),
)  # fmt: skip


@QUICK
@given(query=_QUERY)
def test_keyword_queries_are_valid_fts5_and_keep_every_word(query: str) -> None:
    match = keyword_query(query)
    terms = re.findall(r'"([^"]*)"', match)
    assert match == " OR ".join(f'"{t}"' for t in terms)
    assert len(terms) == len(set(terms)) <= MAX_QUERY_TERMS
    assert all(t and not re.search(r"[\W_]", t) for t in terms)
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFC", query).lower())
    if len(set(words)) <= MAX_QUERY_TERMS:  # below the cap, no content word is dropped
        assert set(terms) == {w for w in words if keyword_query(w)}
    hits = _catalog().keyword_search(query, 5)  # SQLite accepts it
    assert all(chunk_id.startswith("c") for chunk_id, _ in hits)


_WORDS = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
# No headings: a heading with no text under it is replaced by the next one, by design.
# "x-note" is an element no browser knows, which flows inline like a span.
_TAGS = ["div", "span", "p", "li", "td", "b", "em", "a", "section", "pre", "br", "x-note"]


@st.composite
def _pages(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A page of random, sometimes unclosed elements around random words, and the words."""
    words: list[str] = []
    out: list[str] = []
    for _ in range(draw(st.integers(0, 30))):
        tag = draw(st.sampled_from(_TAGS))
        if tag == "br":
            out.append("<br>")
            continue
        inner = draw(st.lists(_WORDS, max_size=5))
        words.extend(inner)
        gap = draw(st.sampled_from([" ", "\n", " &amp; ", " <b>", "</b> ", " <!-- x --> "]))
        close = draw(st.sampled_from([f"</{tag}>", "", "\n"]))
        out.append(f"<{tag}>{gap.join(inner)}{close}")
    return "<html><body>" + " ".join(out) + "</body></html>", words


@settings(QUICK, max_examples=50)
@given(page=_pages())
def test_html_keeps_every_visible_word_with_a_source_line(page: tuple[str, list[str]]) -> None:
    raw, words = page
    sections = html_sections(raw)
    lines = raw.count("\n") + 1
    for section in sections:
        assert section.line_map is not None
        assert len(section.line_map) == len(section.text.split("\n"))
        assert all(1 <= line <= lines for line in section.line_map)
    shown = Counter(w for s in sections for w in s.text.split())
    assert not Counter(words) - shown


@QUICK
@given(raw=st.text(alphabet="<>/&;#!-abcpdivhr1= \n\"'", max_size=400))
def test_html_reader_survives_any_markup(raw: str) -> None:
    for section in html_sections(raw):
        assert section.text.strip()
        assert section.line_map is not None and min(section.line_map) >= 1
