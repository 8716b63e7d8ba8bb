"""Documents as a responder: answers from the sentences of the sources that answer the question.

The sources go in the new user message only (stored history keeps the bare question, so
earlier turns' sources never pile up in later prompts), cut to ``source_tokens`` with the
model's tokenizer; the memory strategy then fits the history around them.

With an embedder, every sentence of the retrieved chunks is scored against the question
(:mod:`assistant.rag.extract`). When none supports an answer the reply says nothing was
found, without calling the model. Otherwise the answer is, by ``answer_mode``:

- ``extractive``: the best sentence, quoted, with its ``[n]`` (no model call);
- ``guided``: the model, given the best few sentences, quotes one of the best three: a
  grammar lets it choose which and copy it exactly (its log-probabilities then say how
  sure it was of the choice);
- ``generative``: the model's, given only the best few sentences to copy from, with the
  citations it leaves out added (:mod:`assistant.rag.cite`); when its confidence is below
  :data:`LOW_CONFIDENCE`, the best sentence is quoted after it ("The source says: ...");
- ``auto``: extractive for models under a billion parameters, generative otherwise.

Without an embedder the model gets the whole chunks, as before sentence selection existed.
Either way the events are Token..., one Done (``extra["confidence"]`` in [0, 1], with
``extra["confidence_basis"]`` "logprob" or "support", and ``extra["answer_mode"]``), then
:class:`~assistant.responders.Sources`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from assistant.backends.base import Backend, Done, Timings, Token, Usage
from assistant.confidence import LOW_LOGPROB_CONFIDENCE, from_extra
from assistant.memory.summarize import trim_to_tokens
from assistant.rag.answer import (
    NOTHING_FOUND,
    SYSTEM,
    citation_stream,
    citations,
    question_with_sources,
    relevant,
    resolve_mode,
    source_blocks,
)
from assistant.rag.cite import Encode
from assistant.rag.extract import (
    Candidate,
    Weights,
    candidates,
    nothing_about,
    quote,
    quote_grammar,
    supported,
    supporting_blocks,
    unknown_names,
)
from assistant.rag.index import Hit
from assistant.responders import Sources, Turn, fixed_reply

Search = Callable[[str], list[Hit]]
# Below this confidence (exp of the mean token logprob) a generated answer is followed by
# the quote of the best sentence: on the tuning half of bench/docqa.py this threshold made
# the 135M model's generative answers as right as the extractive ones.
LOW_CONFIDENCE = LOW_LOGPROB_CONFIDENCE
SOURCE_SAYS = "\n\nThe source says: "


def support_confidence(best: Candidate, weights: Weights) -> float:
    """A [0, 1] confidence for a quoted sentence: 0.5 at ``min_score``, rising with its score."""
    return 1.0 / (1.0 + math.exp(-10.0 * (best.score - weights.min_score)))


class DocumentsResponder:
    """Answer from the user's documents, citing them as [n]."""

    mode = "documents"

    def __init__(
        self,
        backend: Backend,
        search: Search,
        *,
        min_similarity: float,
        encode: Encode | None = None,
        source_tokens: int | None = None,
        answer_mode: str = "auto",
        weights: Weights | None = None,
    ) -> None:
        self.backend = backend
        self.search = search
        self.min_similarity = min_similarity
        self.encode = encode
        # At most a third of the context for sources, by default.
        self.source_tokens = source_tokens or backend.context_length // 3
        self.answer_mode = resolve_mode(answer_mode, backend)
        self.weights = weights or Weights()
        self.hits: list[Hit] = []
        self.ranked: list[Candidate] = []
        self.missing: list[str] = []  # names of the question no source mentions
        self._asked: str | None = None

    def system_prompt(self, conversation_prompt: str | None) -> str:
        """The answer instructions, then the conversation's own system prompt."""
        return SYSTEM + (f"\n\n{conversation_prompt}" if conversation_prompt else "")

    def user_prompt(self, question: str, shown: str) -> str:
        """Search for ``question``; the message shows what answers it, then ``shown``."""
        if question != self._asked:  # the turn owner may plan a turn several times
            self._asked = question
            self.hits = relevant(self.search(question), self.min_similarity, question, self.encode)
            self.ranked = []
            if self.hits and self.encode is not None:
                self.ranked = candidates(question, self.hits, self.encode, self.weights)
            self.missing = unknown_names(question, self.hits) if self.weights.names else []
        if not self.hits or not self._supported():
            return shown
        if self.encode is None:
            blocks = self._fitted(source_blocks(self.hits, max_chars=10**9))
            self.hits = self.hits[: len(blocks)]
        else:
            blocks = self._fitted(supporting_blocks(self.hits, self.ranked))
        return question_with_sources(shown, blocks)

    def overhead(self) -> int:
        """Nothing outside the plan (the sources are in it)."""
        return 0

    def respond(self, turn: Turn) -> Iterator[Any]:
        """Stream the cited answer, then the Sources it was given and cites."""
        self._asked = None  # the next turn searches again
        if not self.hits:
            yield Sources([], found=False)
            yield from fixed_reply(NOTHING_FOUND)
            return
        if self.missing:
            yield Sources(self.hits, found=False)
            yield from fixed_reply(nothing_about(self.missing))
            return
        if not self._supported():
            yield Sources(self.hits, found=False)
            yield from fixed_reply(NOTHING_FOUND)
            return
        if self.answer_mode == "extractive" and self.ranked:
            yield from self._quote(self.ranked[0])
            return
        if self.answer_mode == "guided" and self.ranked:
            grammar = quote_grammar(self.ranked, weights=self.weights)
            turn = replace(turn, options=replace(turn.options, grammar=grammar))
        yield from self._generate(turn)

    def _supported(self) -> bool:
        if self.missing:
            return False
        return self.encode is None or supported(self.ranked, self.weights)

    def _quote(self, best: Candidate) -> Iterator[Any]:
        yield Token(quote(best, self.weights))
        yield Done(
            "stop",
            Usage(0, 0),
            Timings(0.0, 0.0, 0.0),
            extra={
                "confidence": round(support_confidence(best, self.weights), 4),
                "confidence_basis": "support",
                "answer_mode": "extractive",
            },
        )
        yield Sources(self.hits, [best.n], [])

    def _generate(self, turn: Turn) -> Iterator[Any]:
        guided = self.answer_mode == "guided" and bool(self.ranked)  # quotes carry their [n]
        citer = None if guided else citation_stream(self.encode, self.hits)
        events = self.backend.stream(turn.plan.messages, turn.options)
        parts: list[str] = []
        for event in events if citer is None else citer(events):
            if isinstance(event, Token):
                parts.append(event.text)
            elif isinstance(event, Done):
                event = _with_confidence(event, self.answer_mode)
                if self._unsure(event):
                    # A low-confidence answer is backed by the sentence that best answers.
                    evidence = f"{SOURCE_SAYS}{quote(self.ranked[0], self.weights)}"
                    parts.append(evidence)
                    yield Token(evidence)
                    event = replace(event, extra={**event.extra, "quoted_source": True})
            yield event
        text = "".join(parts)
        attributed = citer.added if citer is not None else []
        yield Sources(self.hits, citations(text, len(self.hits)), attributed)

    def _unsure(self, done: Done) -> bool:
        """Whether a generated answer's confidence is below :data:`LOW_CONFIDENCE`."""
        confidence = done.extra.get("confidence")
        return (
            self.answer_mode == "generative"
            and bool(self.ranked)
            and isinstance(confidence, float)
            and confidence < LOW_CONFIDENCE
        )

    def _fitted(self, blocks: list[str]) -> list[str]:
        fitted_blocks: list[str] = []
        left = self.source_tokens
        for block in blocks:
            if left <= 8:
                break
            fitted = trim_to_tokens(block, left, self.backend)
            fitted_blocks.append(fitted)
            left -= self.backend.count_tokens(fitted) + 2
        return fitted_blocks


def _with_confidence(done: Done, mode: str) -> Done:
    """``done`` with its tokens' confidence (when the backend recorded log-probabilities)."""
    confidence = from_extra(done.extra)
    extra = {**done.extra, "answer_mode": mode}
    if confidence is not None:
        extra.update(confidence=round(confidence.score, 4), confidence_basis="logprob")
    return replace(done, extra=extra)
