"""Bad and hostile input to the document loaders, chunker and ingest: one clear reason each.

Nothing lost (text in divs, non-ASCII query words), nothing hangs (zip and PDF bombs, fifos,
one enormous line), nothing printed raw (escape sequences in file names).
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlite_utils

from assistant.rag.catalog import Catalog, keyword_query
from assistant.rag.chunking import MAX_CHARS, Chunk, chunk_sections
from assistant.rag.loaders import Section, load

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
