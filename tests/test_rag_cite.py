"""Citations added to sentences the model left uncited, with the real embedding model."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.backends.base import Done, Event, GenerationOptions, Timings, Token, Usage
from assistant.backends.scripted import ScriptedBackend
from assistant.rag.answer import answer, relevant
from assistant.rag.cite import Attributor, CitationStream, sentences
from assistant.rag.embeddings import Embedder
from assistant.rag.index import Hit, open_index
from tests.fixtures_rag.build import DOCS

DESCALING = (
    "Limescale builds up in hard-water areas. To descale the kettle, fill it halfway with "
    "white vinegar, leave it for one hour, then rinse it three times with clean water."
)
SAFETY = "Never immerse the base in water. Unplug the kettle before cleaning it."


def hit(text: str, line: int) -> Hit:
    return Hit("kettle.md", None, line, line, "", 1.0, text)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def attributor(embedder: Embedder) -> Attributor:
    return Attributor(embedder.encode, [hit(DESCALING, 7), hit(SAFETY, 12)])


def tokens(text: str) -> Iterator[Event]:
    """``text`` as a model would stream it: a word (with its leading space) at a time."""
    for piece in re.findall(r"\s*\S+|\s+", text):
        yield Token(piece)
    yield Done("stop", Usage(1, 1), Timings(0.0, 0.0, 0.0))


def test_each_sentence_gets_the_source_that_supports_it(attributor: Attributor) -> None:
    assert attributor.source_for("Fill the kettle with white vinegar for an hour.") == 1
    assert attributor.source_for("Do not put the base of the kettle in water.") == 2
    assert attributor.source_for("Paris is the capital and largest city of France.") is None
    assert attributor.source_for("Yes, indeed.") is None  # too little to attribute


def test_the_stream_gains_citations_and_loses_nothing(attributor: Attributor) -> None:
    text = (
        "Fill the kettle with white vinegar for an hour. Paris is the capital of France.\n"
        "- Never put the base in water\n"
        "```\nfill the kettle with white vinegar\n```\n"
        "Rinse it three times with clean water [2]. Then rinse the kettle with clean water"
    )
    citer = CitationStream(attributor)
    events = list(citer(tokens(text)))
    out = "".join(e.text for e in events if isinstance(e, Token))
    assert out == (
        "Fill the kettle with white vinegar for an hour. [1] Paris is the capital of France.\n"
        "- Never put the base in water [2]\n"
        "```\nfill the kettle with white vinegar\n```\n"
        "Rinse it three times with clean water [2]. Then rinse the kettle with clean water [1]"
    )
    assert isinstance(events[-1], Done)
    assert citer.added == [1, 2]


def test_a_boundary_inside_one_token_is_found(attributor: Attributor) -> None:
    pieces = ["Fill the kettle", " with white vinegar for an hour.\n\nParis", " is far."]
    citer = CitationStream(attributor)
    out = "".join(e.text for e in citer(iter([Token(p) for p in pieces])))
    assert out == "Fill the kettle with white vinegar for an hour. [1]\n\nParis is far."


def test_sentences_splits_on_ends_and_lines() -> None:
    assert sentences("One two. Three?\nFour\n\nfive!") == ["One two.", "Three?", "Four", "five!"]


def test_sentences_do_not_end_at_e_g_or_i_e() -> None:
    text = (
        "Each entry is listed with its name (e.g. stash@{0} is the latest, stash@{1} the one "
        "before, etc.), its branch. Keep it short, i.e. one line. Apples, pears, etc. Next."
    )
    assert sentences(text) == [
        "Each entry is listed with its name (e.g. stash@{0} is the latest, stash@{1} the one "
        "before, etc.), its branch.",
        "Keep it short, i.e. one line.",
        "Apples, pears, etc.",
        "Next.",
    ]


NOTE = (
    "Tyre pressure: front 100 psi, rear 110 psi.\n"
    "Chain: clean and lube every 300 km, or after any wet ride.\n"
    "Brake pads are replaced when the groove is gone.\n"
    "The spare inner tubes are 700x25c, in the garage drawer.\n"
    "Saddle height: 74 cm from the pedal axle.\n"
    "Winter storage: hang it by the front wheel, away from the boiler."
)


def test_a_note_far_from_a_question_as_a_whole_is_kept_by_its_answering_line(
    embedder: Embedder,
) -> None:
    """Real MiniLM: a multi-topic note is below the similarity floor as a whole, its chain
    line is above it; an unrelated chunk stays out either way."""
    question = "How often should I lube the chain?"
    vectors = embedder.encode([question, NOTE])
    similarity = float(vectors[1] @ vectors[0])
    assert similarity < 0.3  # what the chunk-level floor alone would drop
    far = "The library opened in 1902 and holds maps of the old harbour."
    vectors = embedder.encode([question, far])
    hits = [
        Hit("bike.md", None, 1, 6, "Bike", 1.0, NOTE, similarity),
        Hit("town.md", None, 1, 1, "", 0.5, far, float(vectors[1] @ vectors[0])),
    ]
    assert relevant(hits, 0.3) == []
    assert relevant(hits, 0.3, question, embedder.encode) == hits[:1]


def test_answers_from_the_index_cite_the_right_file_and_lines(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("kettle.md", "notes.txt"):
        shutil.copy(DOCS / name, folder / name)
    index = open_index(home / "documents")
    index.ingest([str(folder)])
    question = "How do I descale the kettle?"
    hits = index.search(question, k=3)
    uncited = "Fill it halfway with white vinegar and leave it for one hour."
    result = answer(
        ScriptedBackend([uncited]),
        question,
        hits,
        GenerationOptions(max_tokens=64),
        min_similarity=0.3,
        encode=index.embedder.encode,
    )
    assert result.cited == result.attributed and len(result.cited) == 1
    source = result.sources[result.cited[0] - 1]
    assert (Path(source.source).name, source.line_start, source.line_end) == ("kettle.md", 7, 8)
    assert result.answer == f"{uncited} [{result.cited[0]}]"

    plain = answer(
        ScriptedBackend([uncited]), question, hits, GenerationOptions(), min_similarity=0.3
    )
    assert (plain.answer, plain.cited, plain.attributed) == (uncited, [], [])
