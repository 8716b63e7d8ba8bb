"""Split sections into chunks that fit the embedding model's window, keeping provenance.

Pure functions: sections in, chunks out. Sizes are in words and in characters.
all-MiniLM-L6-v2 reads 256 word pieces, and English prose averages about 1.3-1.6 pieces a
word, so 160 words stay inside the window while keeping a paragraph's context together.
Text without spaces (minified code, base64, a long URL) has no words to count, so a chunk is
also cut at ``MAX_CHARS``: one 300 KB line must not become one chunk whose embedding sees
only its first few hundred characters.

Words are only an estimate of word pieces: code, paths and non-English text take far more
pieces a word, and MiniLM silently drops everything past its 256th. Given the embedder's
own tokenizer (``count_tokens``), a section whose chunks do not fit is chunked again with a
word budget scaled down to fit, so what is embedded is the whole chunk. Ingest does NOT do
this: on bench/retrieval.py --chunking it scored worse at file level (Debian FAQ nDCG@10
-0.034, git/SQLite FAQs -0.095, both p < 0.002) although 30% and 61% of their chunks run
past 256 pieces: the smaller chunks lose more context than the cut-off tail held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from assistant.rag.loaders import Section

MAX_WORDS = 160
OVERLAP_WORDS = 20
# About what 160 words of prose take, so the character cut rarely splits ordinary text.
MAX_CHARS = 1200
# all-MiniLM-L6-v2's window, [CLS] and [SEP] included.
MAX_TOKENS = 256
_MIN_WORDS = 8


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, as indexed and as cited."""

    text: str
    heading: str
    page: int | None
    line_start: int | None
    line_end: int | None


# A piece of the section: text, its 0-based line offset in the section, its word count.
_Piece = tuple[str, int, int]


def embedded_text(heading: str, text: str) -> str:
    """What gets embedded for a chunk: the heading path gives it its topic."""
    return f"{heading}\n{text}" if heading else text


def chunk_sections(
    sections: list[Section],
    max_words: int = MAX_WORDS,
    overlap: int = OVERLAP_WORDS,
    max_chars: int = MAX_CHARS,
    *,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = MAX_TOKENS,
) -> list[Chunk]:
    """Split every section into chunks of at most ``max_words`` words and ``max_chars`` chars.

    Lines are kept whole where possible, so each chunk's line span is exact; a single line
    over either budget is cut into windows that share up to ``overlap`` words (and a
    proportional number of characters); a word longer than ``max_chars`` is cut itself.
    With ``count_tokens``, a section is chunked again with fewer words until each chunk's
    embedded text (heading included) fits ``max_tokens`` (or the word budget is 8).
    """
    if max_words < 1 or max_chars < 1:
        raise ValueError("max_words and max_chars must be at least 1")
    chunks: list[Chunk] = []
    for section in sections:
        words = max_words
        while True:
            shared = overlap if words == max_words else min(overlap, words // 4)
            found = _chunk_section(section, words, max(shared, 0), max_chars)
            if count_tokens is None or words <= _MIN_WORDS:
                break
            worst = max((count_tokens(embedded_text(c.heading, c.text)) for c in found), default=0)
            if worst <= max_tokens:
                break
            words = max(_MIN_WORDS, min(words - 1, int(words * max_tokens / worst * 0.95)))
        chunks.extend(found)
    return chunks


def _chunk_section(section: Section, max_words: int, overlap: int, max_chars: int) -> list[Chunk]:
    # Whole lines are kept verbatim (code keeps its indentation); over-long lines become
    # overlapping windows that all point at that one line.
    pieces: list[_Piece] = []
    for offset, line in enumerate(section.text.split("\n")):
        kept = line.rstrip()
        words = kept.split()
        if len(words) <= max_words and len(kept) <= max_chars:
            pieces.append((kept, offset, len(words)))
            continue
        for window in _windows(words, max_words, overlap, max_chars):
            pieces.append((" ".join(window), offset, len(window)))
    chunks: list[Chunk] = []
    current: list[_Piece] = []
    count = chars = 0
    for piece in pieces:
        added = len(piece[0]) + (1 if current else 0)  # the newline that joins it
        if count and (count + piece[2] > max_words or chars + added > max_chars):
            chunks.append(_make(section, current))
            current, count, chars = [], 0, 0
            added = len(piece[0])
        if piece[2] or current:
            current.append(piece)
            count += piece[2]
            chars += added
    if count:
        chunks.append(_make(section, current))
    return chunks


def _windows(words: list[str], max_words: int, overlap: int, max_chars: int) -> list[list[str]]:
    """Cut one line's words into windows within both budgets; consecutive ones overlap."""
    # Overlap in characters scales with the word overlap, so char-bound windows of long
    # words do not repeat most of themselves (which would multiply the index size).
    overlap_chars = max_chars * overlap // max_words
    tokens: list[str] = []
    for word in words:
        if len(word) <= max_chars:
            tokens.append(word)
            continue
        step = max(max_chars - overlap_chars, 1)
        for start in range(0, len(word), step):
            tokens.append(word[start : start + max_chars])
            if start + max_chars >= len(word):
                break
    windows: list[list[str]] = []
    start = 0
    while start < len(tokens):
        end, chars = start + 1, len(tokens[start])
        while end < len(tokens) and end - start < max_words:
            if chars + 1 + len(tokens[end]) > max_chars:
                break
            chars += 1 + len(tokens[end])
            end += 1
        windows.append(tokens[start:end])
        if end == len(tokens):
            break
        # Step back over at most ``overlap`` words and ``overlap_chars`` characters, and
        # always move forward, so every window ends further on than the one before.
        back, shared = end, 0
        while back - 1 > start and end - (back - 1) <= overlap:
            shared += len(tokens[back - 1]) + 1
            if shared > overlap_chars:
                break
            back -= 1
        start = back
    return windows


def _make(section: Section, pieces: list[_Piece]) -> Chunk:
    while pieces and not pieces[-1][2]:
        pieces = pieces[:-1]
    text = "\n".join(p[0] for p in pieces).strip("\n")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    line_start = line_end = None
    if section.line_map is not None:
        line_start, line_end = section.line_map[pieces[0][1]], section.line_map[pieces[-1][1]]
    elif section.line_start is not None:
        line_start = section.line_start + pieces[0][1]
        line_end = section.line_start + pieces[-1][1]
    return Chunk(text, section.heading, section.page, line_start, line_end)
