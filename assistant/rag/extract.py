"""The sentences of the retrieved sources that answer a question, and answers quoted from them.

A 135M model given whole chunks answers about half the time: it copies a number from the
wrong line, answers "The answer is: [1] file.md:12-13", or adds a total where the question
asked for one step. Here every sentence of the numbered sources is scored against the
question (embedding similarity, the share of the question's words it repeats, weighted by
how rare they are among the candidates, the words of its heading and previous sentence, and
whether it holds a number when the question asks for one), and:

- the best sentence, quoted with its ``[n]``, is the *extractive* answer;
- the few best sentences are what a *generative* answer is given to copy from;
- when no sentence scores :attr:`Weights.min_score`, nothing supports an answer and the
  reply says so.

Everything here is a pure function of the question, the hits and an ``encode`` function.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from assistant.rag.cite import Encode, content_words, sentences
from assistant.rag.index import Hit

_NUMBER_QUESTION = re.compile(
    r"\b(how (many|much|big|large|small|long|deep|old|often|far)|what (year|version|size|"
    r"percent)|which (year|version|release)|when|since (when|which)|until (when|what)|"
    r"(maximum|minimum|largest|smallest|most|least|highest|lowest|default)( \w+)? (number|"
    r"size|value|length|count))\b"
)
_NUMBER = re.compile(
    r"\d[\d,.]*|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
    r"hundred|thousand|million|billion|trillion|once|twice|hourly|daily|weekly|monthly|yearly|"
    r"annually)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"\b(found nothing|nothing about|no information|not (mention|contain|provide|say|cover|"
    r"include|specif)\w*|do(es)? not (know|have)|don't (know|have)|cannot (find|answer)|"
    r"can't (find|answer)|unable to (find|answer)|not found|no (answer|mention))\b",
    re.IGNORECASE,
)
# A question asking what happens when the user leaves a setting alone.
_DEFAULT_QUESTION = re.compile(
    r"\b(default|out of the box|unless (i|you) \w+|(if|when) (i|you) (don't|do not|never) \w+|"
    r"without (specifying|setting|choosing|naming|giving|passing)|(if|when) (none|nothing) is "
    r"(given|set|chosen|specified|named))",
    re.IGNORECASE,
)
_DEFAULT = re.compile(r"\bdefault", re.IGNORECASE)
MAX_QUOTE_CHARS = 400
SEEK_SENTENCES = 4
MIN_WORDS = 4
TERM_WORDS = 8
LABEL_LINES = 3  # the paragraphs under a term line quoted under it
LABEL_NAMES = 3  # term lines in a row that still name one entry ("-S", "--staged")
LABEL_CHARS = 80


@dataclass(frozen=True)
class Weights:
    """How a span's features add up to its score, and the score an answer needs.

    Tuned on the even-numbered questions of bench/docqa.py's three corpora (sqlite3-doc,
    postgresql-doc-15 and git-doc); the odd-numbered ones report them.
    """

    lexical: float = 0.6  # share of the question's words (rarer ones count more) in it
    context: float = 0.15  # the same share in its heading, paragraph subject, sentence before
    number: float = 0.1  # the question asks for a number and the span has a new one
    rank: float = 0.0  # taken off per place its source is below the first
    span: float = 0.05  # taken off a two-sentence span
    short: float = 0.0  # taken off a span of fewer than MIN_WORDS content words (a fragment)
    default: float = 0.3  # the question asks for a default and the span states one
    term: float = 0.2  # taken off a term or title line alone (it names, it does not answer)
    # Refuse when the question names something (MySQL, Oracle, GitHub) no source mentions.
    names: bool = True
    min_score: float = 0.6015  # below this, nothing supports an answer
    # How the chosen span is quoted (see :func:`quote`): with the sentence after it (in its
    # paragraph), and with the one before it when it opens by pointing back ("This
    # function returns ...").
    follow: bool = True
    lead: bool = True
    # A question asking for a default or a quantity whose span does not hold one: the next
    # sentence of the chunk that does (within SEEK_SENTENCES) is quoted after it, with "…".
    seek: bool = True
    # A span in the LABEL_LINES paragraphs under a term line (an option, a parameter, a
    # subcommand) is quoted after that term, "verify <file>: Used to check that a bundle
    # file is valid": what it describes is often the answer ("which option ...").
    label: bool = True


@dataclass(frozen=True)
class Candidate:
    """A span of one or two consecutive source sentences, with its features and score.

    ``n`` numbers its source from 1; ``context`` is the share of the question's words found
    only around it (heading, previous sentence); ``number`` whether the question asks for a
    quantity and the span holds a number the question does not; ``words`` how many content
    words it has.
    """

    n: int
    text: str
    sentences: int
    similarity: float
    overlap: float
    context: float
    number: bool
    words: int = MIN_WORDS
    states_default: bool = False  # the question asks for a default and the span states one
    term: bool = False  # a term or title line alone
    score: float = 0.0
    before: str = ""  # the sentence before the span in its chunk ("" at the start)
    after: str = ""  # the sentence after it ("" at the end)
    value: str = ""  # a later sentence holding the default or number asked for, if any
    label: str = ""  # the entry's term lines it is under ("-S, --staged"), if any


def stems(text: str) -> set[str]:
    """Content words cut to five letters, so "columns" meets "column" and "attached" "attach"."""
    return {w[:5] if len(w) > 5 else w for w in content_words(text)}


def expects_number(question: str) -> bool:
    """Whether the question asks for a quantity, a size, a date or a version."""
    return _NUMBER_QUESTION.search(question.lower()) is not None


def is_refusal(text: str) -> bool:
    """Whether an answer says the sources do not hold what was asked."""
    return _REFUSAL.search(text) is not None


def _weighted_share(words: set[str], found: set[str], idf: dict[str, float]) -> float:
    total = sum(idf[w] for w in words)
    return sum(idf[w] for w in words & found) / total if total else 0.0


def _numbers(text: str) -> set[str]:
    return {m.group().lower() for m in _NUMBER.finditer(text)}


@dataclass(frozen=True)
class Span:
    """One or two consecutive sentences of a source, with what surrounds them."""

    n: int
    text: str
    around: str  # the heading and the sentence before
    sentences: int
    before: str
    after: str
    rest: tuple[str, ...] = ()  # the sentences after it in the chunk (SEEK_SENTENCES at most)
    term: bool = False  # it is a term or title line ("Maximum Number Of Attached Databases")
    label: str = ""  # the entry's term lines it is under ("-S, --staged"), if any


def spans(hits: Sequence[Hit]) -> list[Span]:
    """Every span of ``hits``: one sentence, or it and the next one of the same chunk.

    An answer often follows the sentence that names its subject ("... upper bound on:
    columns in a table ... The default setting for SQLITE_MAX_COLUMN is 2000."). What is
    around a span is its heading, its paragraph's subject (the term line above the
    paragraph, as a definition list or a parameter reference has one, and the paragraph's
    first sentence) and the sentence before it. A span's label is the entry it is under:
    the term lines above it (several in a row name one entry: "-S", "--staged"), for the
    LABEL_LINES paragraphs after them.
    """
    found = []
    for n, hit in enumerate(hits, 1):
        parts: list[str] = []
        subjects: list[str] = []
        terms: list[bool] = []  # whether each part is a term line
        paragraphs: list[int] = []  # the line (a paragraph, a list item) each part is on
        labels: list[str] = []  # the entry's term lines above each part ("" if none)
        term = ""
        entry: list[str] = []  # the last run of term lines ("-S", "--staged")
        label_lines = 0  # paragraphs since it
        for number, line in enumerate(_unwrapped(hit.text)):
            pieces = sentences(line)
            if not pieces:
                continue
            paragraphs += [number] * len(pieces)
            subject = f"{term} {pieces[0]}".strip()
            parts += pieces
            subjects += [subject] * len(pieces)
            this_term = line.strip() if _is_term(line) else ""
            if this_term:  # "-S" then "--staged": one entry's names, "-S, --staged"
                entry = [*entry, this_term] if term else [this_term]
                label_lines = 0
                labels += [""] * len(pieces)
            else:
                label_lines += 1
                names_it = ", ".join(entry)
                # More names than an entry has are a code block or a list, not a label.
                named = len(entry) <= LABEL_NAMES and len(names_it) <= LABEL_CHARS
                labels += [names_it if named and label_lines <= LABEL_LINES else ""] * len(pieces)
            term = this_term
            terms += [bool(term) and len(pieces) == 1] * len(pieces)
        for i, sentence in enumerate(parts):
            before = parts[i - 1] if i else ""
            subject = subjects[i] if subjects[i] not in (sentence, before) else ""
            around = " ".join(t for t in (hit.heading, subject, before) if t)
            rest = tuple(parts[i + 1 : i + 1 + SEEK_SENTENCES])
            after = _next(parts, paragraphs, i + 1, sentence)
            found.append(Span(n, sentence, around, 1, before, after, rest, terms[i], labels[i]))
            # A pair never ends on a term line: that names the next entry, not this one.
            if i + 1 < len(parts) and not terms[i + 1]:
                pair = f"{sentence} {parts[i + 1]}"
                after = _next(parts, paragraphs, i + 2, pair)
                found.append(Span(n, pair, around, 2, before, after, rest[1:], label=labels[i]))
    return found


def _unwrapped(text: str) -> list[str]:
    """The lines of ``text`` with hard-wrapped prose joined again.

    A line continues the one before when that one is prose (more than TERM_WORDS words)
    with no sentence-final mark and this one opens in lower case: "Its admin page is at
    192.168.1.1 and the" / "password is on a sticker under it." in a Markdown note. HTML
    is read one block a line, a term or code line is too short to be prose, and a table
    row (cells joined by " | ") is never joined.
    """
    lines: list[str] = []
    for line in text.split("\n"):
        last = lines[-1].rstrip() if lines else ""
        stripped = line.strip()
        if (
            last
            and stripped[:1].islower()
            and len(last.split()) > TERM_WORDS
            and not last.endswith((".", "!", "?", ":", ";"))
            and " | " not in f"{last} {stripped}"  # table rows stay rows
        ):
            lines[-1] = f"{last} {stripped}"
        else:
            lines.append(line)
    return lines


def _is_term(line: str) -> bool:
    """A line that names what the paragraph under it is about ("checkpoint_timeout
    (integer)", "-F format", a title): short, not a sentence, not a table row."""
    text = line.strip()
    return (
        0 < len(text.split()) <= TERM_WORDS
        and not text.endswith((".", "!", "?", ":"))
        and " | " not in text
    )


def _next(parts: list[str], paragraphs: list[int], i: int, span: str) -> str:
    """The sentence at ``i`` as the one after ``span``: "" past the end, and in another
    paragraph (a note's next line is its next fact: "Chain: lube every 300 km." is not
    followed by "Brake pads are replaced ...") unless the span ends in a colon (it
    introduces that line: "To create an index without locking out writes: CREATE INDEX
    CONCURRENTLY ..."). That covers a term line too ("gc.pruneExpire" names the next entry,
    not more of this one)."""
    if i >= len(parts):
        return ""
    if paragraphs[i] != paragraphs[i - 1] and not span.rstrip().endswith(":"):
        return ""
    return parts[i]


def features(question: str, hits: Sequence[Hit], encode: Encode | None) -> list[Candidate]:
    """Every span of ``hits`` with its features against ``question`` (not scored yet).

    Without ``encode`` the similarity is 0 (word overlap alone).
    """
    pieces = spans(hits)
    if not pieces:
        return []
    asked = stems(question)
    words = [stems(p.text) for p in pieces]
    single = [w for w, p in zip(words, pieces, strict=True) if p.sentences == 1]
    df = {w: sum(1 for found in single if w in found) for w in asked}
    idf = {w: math.log(1 + len(single) / (1 + df[w])) for w in asked}
    similarity = np.zeros(len(pieces), dtype=np.float32)
    if encode is not None:
        vectors = encode([question] + [p.text for p in pieces])
        similarity = vectors[1:] @ vectors[0]
    numeric = expects_number(question)
    asked_numbers = _numbers(question)
    asks_default = _DEFAULT_QUESTION.search(question) is not None

    def holds_value(text: str) -> bool:
        if asks_default:
            return _DEFAULT.search(text) is not None
        return numeric and bool(_numbers(text) - asked_numbers)

    found = []
    for i, p in enumerate(pieces):
        found.append(
            Candidate(
                n=p.n,
                text=p.text,
                sentences=p.sentences,
                similarity=float(similarity[i]),
                overlap=_weighted_share(asked, words[i], idf),
                context=_weighted_share(asked, stems(p.around) - words[i], idf),
                number=numeric and bool(_numbers(p.text) - asked_numbers),
                words=len(words[i]),
                states_default=asks_default and _DEFAULT.search(p.text) is not None,
                term=p.term,
                label=p.label,
                before=p.before,
                after=p.after,
                value=""
                if holds_value(p.text) or not (asks_default or numeric)
                else next((t for t in p.rest if holds_value(t)), ""),
            )
        )
    return found


def rank(found: Sequence[Candidate], weights: Weights = Weights()) -> list[Candidate]:
    """``found`` scored with ``weights``, best first."""
    scored = [
        replace(
            c,
            score=c.similarity
            + weights.lexical * c.overlap
            + weights.context * c.context
            + (weights.number if c.number else 0.0)
            - weights.rank * (c.n - 1)
            - weights.span * (c.sentences - 1)
            - (weights.short if c.words < MIN_WORDS else 0.0)
            + (weights.default if c.states_default else 0.0)
            - (weights.term if c.term else 0.0),
        )
        for c in found
    ]
    return sorted(scored, key=lambda c: -c.score)


def candidates(
    question: str, hits: Sequence[Hit], encode: Encode | None, weights: Weights = Weights()
) -> list[Candidate]:
    """Every span of ``hits`` scored against ``question``, best first."""
    return rank(features(question, hits, encode), weights)


def supported(ranked: Sequence[Candidate], weights: Weights = Weights()) -> bool:
    """Whether the best sentence scores enough to answer from."""
    return bool(ranked) and ranked[0].score >= weights.min_score


# A name as people write one: capitals inside a word (MySQL, GitHub, iPhone), an acronym
# (WAL, UUID) or a capitalised word that does not open a sentence.
_NAME = re.compile(r"(?<![\w'])([A-Za-z]*[A-Z][\w*+#]*)")
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "ok"})


def names(question: str) -> list[str]:
    """The names in ``question`` (see :data:`_NAME`), in order, once each, as written.

    A question typed in capitals or Title Case Throughout names nothing by its case: none.
    """
    words = [w for w in re.findall(r"[A-Za-z][\w*+#]*", question) if w != "I"]
    if len(words) >= 3 and sum(w[0].isupper() for w in words) > 0.6 * len(words):
        return []
    found: list[str] = []
    lowered_found: set[str] = set()
    for match in _NAME.finditer(question):
        word = match.group(1).strip("-*+#")
        before = question[: match.start()].rstrip(" \"'(¿¡")
        opens = not before or before.endswith((".", "?", "!", ":"))  # a sentence's first word
        lowered = word.lower()
        inner = any(c.isupper() for c in word[1:])
        if len(word) < 2 or lowered in _NOT_NAMES or (opens and not inner):
            continue
        if lowered not in lowered_found:
            lowered_found.add(lowered)
            found.append(word)
    return found


def unknown_names(question: str, hits: Sequence[Hit]) -> list[str]:
    """The names of ``question`` that none of ``hits`` mentions (text, heading or file).

    Compared by their first five letters, as :func:`stems` does, so "Postgres" is found in
    "PostgreSQL" and "indexes" in "INDEX": a question about MySQL over PostgreSQL's manual
    names what the sources are not about, whatever sentence happens to score well.
    """
    seen = " ".join(f"{h.text} {h.heading} {h.source}" for h in hits).lower()
    prefixes = {w[:5] for w in re.findall(r"[\w*+#]+", seen)}
    return [n for n in names(question) if n.lower()[:5] not in prefixes]


def nothing_about(missing: Sequence[str]) -> str:
    """The refusal that names what no source mentions ("I found nothing about MySQL ...")."""
    listed = ", ".join(missing[:-1]) + f" or {missing[-1]}" if len(missing) > 1 else missing[0]
    return f"I found nothing about {listed} in your documents."


# A sentence that opens by pointing back at what the one before it named.
_POINTS_BACK = re.compile(r"^(this|these|that|those|it|they|such)\b", re.IGNORECASE)


def quoted_parts(candidate: Candidate, weights: Weights = Weights()) -> tuple[str, str, str, str]:
    """What an extractive answer quotes for ``candidate``: (before, span, after, value).

    With ``weights.follow`` the sentence after the span comes too, and always when the span
    ends in a colon (it introduces what follows: "...stored in any of these ways:"); with
    ``weights.lead`` the sentence before it when the span opens by pointing back ("This
    function returns a version 4 UUID." names its function in the sentence before); with
    ``weights.seek`` the later sentence holding the default or number asked for. A part not
    quoted is "".
    """
    text = candidate.text.strip()
    followed = bool(candidate.after) and (weights.follow or text.endswith(":"))
    after = candidate.after.strip() if followed else ""
    before = ""
    if weights.lead and candidate.before and _POINTS_BACK.match(text):
        before = candidate.before.strip()
    value = ""
    if weights.seek and candidate.value and not (followed and candidate.value == candidate.after):
        value = candidate.value.strip()
    return before, text, after, value


def _joined(before: str, text: str, after: str, value: str) -> str:
    out = " ".join(p for p in (before, text, after) if p)
    return f"{out} … {value}" if value else out


def _label(candidate: Candidate, weights: Weights, before: str, text: str) -> str:
    """The term an extractive answer quotes ``candidate`` under ("verify <file>: "), or ""
    when it has none, ``weights.label`` is off, or its quoted ``before`` and ``text`` (from
    :func:`quoted_parts`) name it already."""
    term = candidate.label.strip()
    if not (weights.label and term) or term in text or term in before:
        return ""
    return f"{term}: "


def quoted_text(candidate: Candidate, weights: Weights = Weights()) -> str:
    """The text an extractive answer quotes for ``candidate`` (before any shortening)."""
    parts = quoted_parts(candidate, weights)
    return _label(candidate, weights, parts[0], parts[1]) + _joined(*parts)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)].rsplit(" ", 1)[0] + "…"


def quote(
    candidate: Candidate, weights: Weights = Weights(), max_chars: int = MAX_QUOTE_CHARS
) -> str:
    """The extractive answer: the span (as :func:`quoted_parts` widens it), quoted, with its
    citation.

    Over ``max_chars`` the widening gives way in order (the sentence after, then the one
    before) and then the span is cut; the sought value is kept to the last, since it is what
    was asked for.
    """
    before, text, after, value = quoted_parts(candidate, weights)
    term = _label(candidate, weights, before, text)
    max_chars = max(max_chars - len(term), 1)
    if len(_joined(before, text, after, value)) > max_chars:
        after = ""
    if len(_joined(before, text, after, value)) > max_chars:
        before = ""
    if value and len(_joined(before, text, after, value)) > max_chars:
        value = _cut(value, max_chars // 2)
        text = _cut(text, max(max_chars - len(value) - 3, 1))
    return f"“{term}{_cut(_joined(before, text, after, value), max_chars)}” [{candidate.n}]"


def quote_grammar(ranked: Sequence[Candidate], limit: int = 3, weights: Weights = Weights()) -> str:
    """A GBNF grammar whose only sentences are the quotes of the ``limit`` best spans.

    Under it the model can only choose which span to quote (by its own likelihood) and
    copy it exactly, with its citation: "generation constrained to copy".
    """
    quotes: list[str] = []
    for candidate in ranked:
        text = quote(candidate, weights)
        if text not in quotes:
            quotes.append(text)
        if len(quotes) == limit:
            break
    return "root ::= " + " | ".join(_gbnf_literal(q) for q in quotes)


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def supporting_blocks(
    hits: Sequence[Hit], ranked: Sequence[Candidate], limit: int = 4
) -> list[str]:
    """The sentences of the best spans (``limit`` at most) as numbered sources.

    Sources keep the numbers they have in ``hits`` (so ``[n]`` still names the same file),
    and their sentences the order they have there; a source with none is left out.
    """
    chosen: dict[int, list[str]] = {}
    count = 0
    for candidate in ranked:
        for sentence in sentences(candidate.text):
            if count >= limit:
                break
            texts = chosen.setdefault(candidate.n, [])
            if sentence not in texts:
                texts.append(sentence)
                count += 1
    blocks = []
    for n in sorted(k for k, texts in chosen.items() if texts):
        hit = hits[n - 1]
        title = hit.location() + (f" ({hit.heading})" if hit.heading else "")
        ordered = sorted(chosen[n], key=hit.text.find)
        blocks.append(f"[{n}] {title}\n" + " ".join(ordered))
    return blocks


def copied_share(answer: str, ranked: Sequence[Candidate], limit: int = 4) -> float:
    """The share of the answer's content words found in the ``limit`` best sentences."""
    words = stems(re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", answer))
    if not words:
        return 0.0
    source: set[str] = set()
    for candidate in ranked[:limit]:
        source |= stems(candidate.text)
    return len(words & source) / len(words)
