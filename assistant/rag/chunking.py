"""Split sections into chunks that fit the embedding model's window, keeping provenance.

Pure functions: sections in, chunks out. Sizes are in words; all-MiniLM-L6-v2 reads 256
word pieces, and English prose averages about 1.3-1.6 pieces a word, so 160 words stay
inside the window while keeping a paragraph's context together.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.rag.loaders import Section

MAX_WORDS = 160
OVERLAP_WORDS = 20


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, as indexed and as cited."""

    text: str
    heading: str
    page: int | None
    line_start: int | None
    line_end: int | None


def chunk_sections(
    sections: list[Section], max_words: int = MAX_WORDS, overlap: int = OVERLAP_WORDS
) -> list[Chunk]:
    """Split every section into chunks of at most ``max_words`` words.

    Lines are kept whole where possible, so each chunk's line span is exact; a single line
    longer than ``max_words`` is cut into word windows that share ``overlap`` words.
    """
    chunks: list[Chunk] = []
    for section in sections:
        chunks.extend(_chunk_section(section, max_words, overlap))
    return chunks


def _chunk_section(section: Section, max_words: int, overlap: int) -> list[Chunk]:
    # Pieces of whole lines (kept verbatim, so code keeps its indentation), each with its
    # 0-based line offset in the section; over-long lines become overlapping word windows.
    pieces: list[tuple[str, int, int]] = []  # text, offset, words
    step = max(max_words - overlap, 1)
    for offset, line in enumerate(section.text.split("\n")):
        words = line.split()
        if len(words) <= max_words:
            pieces.append((line.rstrip(), offset, len(words)))
            continue
        for start in range(0, len(words), step):
            window = words[start : start + max_words]
            pieces.append((" ".join(window), offset, len(window)))
            if start + max_words >= len(words):
                break
    chunks: list[Chunk] = []
    current: list[tuple[str, int, int]] = []
    count = 0
    for piece in pieces:
        if count and count + piece[2] > max_words:
            chunks.append(_make(section, current))
            current, count = [], 0
        if piece[2] or current:
            current.append(piece)
            count += piece[2]
    if count:
        chunks.append(_make(section, current))
    return chunks


def _make(section: Section, pieces: list[tuple[str, int, int]]) -> Chunk:
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
