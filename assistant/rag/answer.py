"""Answers from documents: numbered sources in the prompt, [n] citations in the answer.

Prompt building and citation parsing are pure functions; :func:`answer` runs them around a
backend. When the best retrieved chunk is less similar to the question than the threshold,
the answer says nothing was found instead of inventing one. Given the embedder's ``encode``,
sentences the model left uncited get the citation of the source that supports them
(:mod:`assistant.rag.cite`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from assistant.backends.base import Backend, ChatMessage, Done, GenerationOptions, Token
from assistant.rag.cite import MIN_SUPPORT, Attributor, CitationStream, Encode, sentences
from assistant.rag.index import Hit

NOTHING_FOUND = "I found nothing about that in your documents."
# Written for small models: no "Answer the question" (the 135M model echoed it back as
# "The answer is: ..."), the words and numbers copied from the source, its number after them.
SYSTEM = (
    "Reply in one short sentence built from the words of the numbered sources below, "
    "copying names and numbers exactly as the source writes them, then the source's number "
    f"in brackets, like [2]. If no source says it, reply: {NOTHING_FOUND}"
)
ANSWER_MODES = ("auto", "extractive", "guided", "generative")
# "auto" quotes the best source sentence for models below this size (measured on the
# bundled 135M model in bench/docqa.py) and lets bigger or unknown models write the answer.
EXTRACTIVE_BELOW_PARAMETERS = 1_000_000_000
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass
class DocsAnswer:
    """An answer with the sources it was given and the ones it cited."""

    answer: str
    sources: list[Hit]
    cited: list[int] = field(default_factory=list)
    found: bool = True
    attributed: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; sources are numbered from 1 as in the answer."""
        return {
            "answer": self.answer,
            "found": self.found,
            "cited": self.cited,
            "attributed": self.attributed,
            "sources": [{"n": n, **h.as_dict()} for n, h in enumerate(self.sources, 1)],
        }


def resolve_mode(mode: str, backend: Backend) -> str:
    """The answer mode to use: ``mode`` itself, or for "auto" one chosen by model size.

    Raises:
        ValueError: ``mode`` is not one of :data:`ANSWER_MODES`.
    """
    if mode not in ANSWER_MODES:
        raise ValueError(f"rag_answer_mode must be one of {', '.join(ANSWER_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    parameters = getattr(getattr(backend, "info", None), "parameters", 0)
    small = isinstance(parameters, int) and 0 < parameters < EXTRACTIVE_BELOW_PARAMETERS
    return "extractive" if small else "generative"


def relevant(
    hits: list[Hit], min_similarity: float, question: str = "", encode: Encode | None = None
) -> list[Hit]:
    """Keep the hits whose cosine similarity reaches ``min_similarity``.

    With ``question`` and ``encode``, a hit below it is kept when one of its sentences is
    as near the question as a source sentence must be to support an answer sentence
    (:data:`assistant.rag.cite.MIN_SUPPORT`): a note on tyres, chains and brakes is far
    from "How often should I lube the chain?" as a whole (0.17), and its chain line is near
    (0.70). Whether a sentence answers is for the span scores to say
    (:func:`assistant.rag.extract.supported`).
    """
    near = [h.similarity is not None and h.similarity >= min_similarity for h in hits]
    below = [i for i, h in enumerate(hits) if not near[i] and h.similarity is not None and h.text]
    if question and encode is not None and below:
        parts = [(i, s) for i in below for s in sentences(hits[i].text)]
        if parts:
            vectors = encode([question] + [s for _, s in parts])
            for (i, _), similarity in zip(parts, vectors[1:] @ vectors[0], strict=True):
                near[i] = near[i] or float(similarity) >= max(min_similarity, MIN_SUPPORT)
    return [h for h, kept in zip(hits, near, strict=True) if kept]


def source_blocks(hits: list[Hit], max_chars: int = 6000) -> list[str]:
    """The sources numbered [1]..[n] with their places, trimmed to ``max_chars`` of text."""
    blocks = []
    budget = max_chars
    for n, hit in enumerate(hits, 1):
        title = hit.location() + (f" ({hit.heading})" if hit.heading else "")
        text = hit.text[: max(budget, 0)]
        blocks.append(f"[{n}] {title}\n{text}")
        budget -= len(text)
    return blocks


def question_with_sources(question: str, blocks: list[str]) -> str:
    """The user message of a documents turn: the numbered sources, then the question."""
    sources = "\n\n".join(blocks)
    return f"Sources:\n\n{sources}\n\nQuestion: {question}"


def build_messages(question: str, hits: list[Hit], max_chars: int = 6000) -> list[ChatMessage]:
    """Return chat messages with the sources numbered [1]..[n] (trimmed to ``max_chars``)."""
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": question_with_sources(question, source_blocks(hits, max_chars)),
        },
    ]


def citations(text: str, count: int) -> list[int]:
    """The distinct source numbers cited as [n] or [n, m] in ``text`` that exist (1..count)."""
    found: list[int] = []
    for group in _CITATION.findall(text):
        for part in group.split(","):
            n = int(part)
            if 1 <= n <= count and n not in found:
                found.append(n)
    return found


def citation_stream(encode: Encode | None, hits: list[Hit]) -> CitationStream | None:
    """What adds the citations the model leaves out (None without an embedder)."""
    return None if encode is None else CitationStream(Attributor(encode, hits))


def stream_answer(
    backend: Backend,
    question: str,
    hits: list[Hit],
    options: GenerationOptions,
    citer: CitationStream | None = None,
) -> Iterator[Token | Done]:
    """Stream the model's answer to ``question`` over ``hits`` (already filtered).

    With ``citer``, `` [n]`` tokens are added after sentences the model did not cite.
    """
    events = backend.stream(build_messages(question, hits), options)
    yield from events if citer is None else citer(events)


def answer(
    backend: Backend,
    question: str,
    hits: list[Hit],
    options: GenerationOptions,
    min_similarity: float,
    encode: Encode | None = None,
) -> DocsAnswer:
    """Answer ``question`` from ``hits``, or say nothing was found when none is relevant."""
    kept = relevant(hits, min_similarity, question, encode)
    if not kept:
        return DocsAnswer(NOTHING_FOUND, [], [], found=False)
    citer = citation_stream(encode, kept)
    text = "".join(
        e.text
        for e in stream_answer(backend, question, kept, options, citer)
        if isinstance(e, Token)
    )
    attributed = citer.added if citer is not None else []
    return DocsAnswer(text.strip(), kept, citations(text, len(kept)), attributed=attributed)
