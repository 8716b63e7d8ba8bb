"""Citations the model left out: each answer sentence is matched to the source behind it.

Small models rarely write ``[n]`` however they are asked. While the answer streams, every
sentence that ends without a citation is compared with the sentences of the numbered
sources (embedding similarity, plus a share of content words it repeats); when one source
supports it well enough, `` [n]`` is inserted right after the sentence. Sentences no source
supports stay uncited, which is itself a signal. Citations the model wrote are kept as they
are, so a model that cites well is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from assistant.backends.base import Event, Token
from assistant.rag.index import Hit

Encode = Callable[[list[str]], NDArray[np.float32]]

# The cosine similarity a source sentence needs to support an answer sentence, and the
# score (similarity + LEXICAL_WEIGHT * share of the answer sentence's content words found in
# it) it needs on top: on-topic sentences that repeat nothing of the source stay uncited.
MIN_SUPPORT = 0.5
LEXICAL_WEIGHT = 0.5
MIN_SCORE = 0.65
MIN_CONTENT_WORDS = 3

_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
# A sentence ends at ., ! or ? before a space, but not at "e.g." or "i.e." (nor "etc."
# before a lower-case word): "listed with its name (e.g. stash@{0} ...)" is one sentence.
_SPLIT = re.compile(
    r"(?<=[.!?])(?<!\b[eE]\.g\.)(?<!\b[iI]\.e\.)(?<!\b[cC]f\.)(?<!\bvs\.)"
    r"(?<!\betc\.(?=\s[a-z(]))\s+|\n+"
)
_CITED = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "then",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "you",
        "your",
        "i",
        "we",
        "they",
        "he",
        "she",
        "not",
        "do",
        "does",
        "can",
        "so",
        "if",
        "but",
    ]
)


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without the commonest function words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences and lines (empty pieces dropped)."""
    return [s.strip() for s in _SPLIT.split(text) if s.strip()]


class Attributor:
    """Finds the numbered source (1-based, as in the prompt) that supports a sentence."""

    def __init__(
        self,
        encode: Encode,
        hits: Sequence[Hit],
        *,
        min_support: float = MIN_SUPPORT,
        lexical_weight: float = LEXICAL_WEIGHT,
        min_score: float = MIN_SCORE,
    ) -> None:
        self.encode = encode
        self.min_support = min_support
        self.lexical_weight = lexical_weight
        self.min_score = min_score
        pieces = [(n, s) for n, hit in enumerate(hits, 1) for s in sentences(hit.text)]
        self._numbers = [n for n, _ in pieces]
        self._words = [content_words(s) for _, s in pieces]
        self._vectors = encode([s for _, s in pieces]) if pieces else None

    def source_for(self, sentence: str) -> int | None:
        """The source number that best supports ``sentence``, or None if none does."""
        words = content_words(sentence)
        if self._vectors is None or len(words) < MIN_CONTENT_WORDS:
            return None
        similarity = self._vectors @ self.encode([sentence])[0]
        best: tuple[float, int] | None = None
        for i, n in enumerate(self._numbers):
            if similarity[i] < self.min_support:
                continue
            overlap = len(words & self._words[i]) / len(words)
            score = float(similarity[i]) + self.lexical_weight * overlap
            if score >= self.min_score and (best is None or score > best[0]):
                best = (score, n)
        return None if best is None else best[1]


@dataclass
class CitationStream:
    """Passes a backend stream through, adding `` [n]`` after uncited supported sentences.

    ``added`` lists the source numbers inserted this way (the model's own are not in it).
    """

    attributor: Attributor
    added: list[int] = field(default_factory=list)
    _sentence: str = ""
    _in_code: bool = False

    def __call__(self, events: Iterator[Event]) -> Iterator[Event]:
        for event in events:
            if isinstance(event, Token):
                yield from self._token(event.text)
            else:
                citation = self._close()
                if citation:
                    yield Token(citation)
                yield event

    def _token(self, text: str) -> Iterator[Token]:
        while text:
            cut = self._boundary(text)
            if cut is None:
                self._sentence += text
                yield Token(text)
                return
            if cut:
                yield Token(text[:cut])
                self._sentence += text[:cut]
            citation = self._close()
            if citation:
                yield Token(citation)
            if text[cut : cut + 1] == "\n":  # the newline that ended the line goes out now
                yield Token("\n")
                cut += 1
            text = text[cut:]

    def _boundary(self, text: str) -> int | None:
        """Where in ``text`` the current sentence ends (the citation goes there), if it does.

        A line ends before its newline; a sentence after its ".", "!" or "?" once a space or
        newline follows, which may be the first character of ``text``.
        """
        done = len(self._sentence)
        for found in _SENTENCE_END.finditer(self._sentence + text):
            at = found.start() if found.group() == "\n" else found.end()
            if at >= done:
                return at - done
        return None

    def _close(self) -> str:
        """End the current sentence; return the citation to insert after it, if any."""
        sentence, self._sentence = self._sentence, ""
        if sentence.strip().startswith("```"):
            self._in_code = not self._in_code
            return ""
        if self._in_code or _CITED.search(sentence):
            return ""
        n = self.attributor.source_for(sentence)
        if n is None:
            return ""
        if n not in self.added:
            self.added.append(n)
        return f" [{n}]"
