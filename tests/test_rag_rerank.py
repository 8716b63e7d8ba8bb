"""The optional cross-encoder reranker, on a tiny BERT cross-encoder built in the test."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.rag.index import Hit
from assistant.rag.rerank import Reranker

WORDS = [
    "kettle",
    "vinegar",
    "descale",
    "water",
    "tomato",
    "soil",
    "chain",
    "oil",
    "how",
    "do",
    "i",
    "the",
    "a",
]


def tiny_cross_encoder(path: Path) -> Path:
    """Save a randomly initialised 1-layer BERT with one output, and its tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    path.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizerFast(vocab={word: n for n, word in enumerate(vocab)})
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(str(path))
    return path


def _hit(text: str, score: float) -> Hit:
    return Hit("f.md", None, 1, 1, "", score, text, 0.5)


def test_reranker_orders_hits_by_cross_encoder_score(tmp_path: Path) -> None:
    reranker = Reranker(tiny_cross_encoder(tmp_path / "ce"))
    hits = [_hit(t, 1.0 - n / 10) for n, t in enumerate(WORDS[:6])]
    query = "how do i descale the kettle"
    scores = reranker.scores(query, [h.text for h in hits])
    assert len(set(scores)) == 6  # a real model gives distinct scores
    reranked = reranker.rerank(query, hits, k=4)
    expected = sorted(zip(scores, WORDS[:6], strict=True), reverse=True)[:4]
    assert [h.text for h in reranked] == [w for _, w in expected]
    assert [h.score for h in reranked] == [round(s, 6) for s, _ in expected]


def test_missing_reranker_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no cross-encoder model"):
        Reranker(tmp_path / "nothing")


def test_catalog_serves_searches_from_another_thread(tmp_path: Path) -> None:
    from assistant.rag.index import open_index
    from tests.fixtures_rag.build import DOCS

    index = open_index(tmp_path / "documents")
    index.ingest([str(DOCS / "notes.txt")])
    found: list[str] = []
    worker = threading.Thread(
        target=lambda: found.extend(
            h.text for h in index.search("Skerry Point", k=1, mode="keyword")
        )
    )
    worker.start()
    worker.join()
    assert found and "Skerry Point" in found[0]


def test_search_reranks_its_candidates_when_a_reranker_is_set(tmp_path: Path) -> None:
    from assistant.rag.index import open_index
    from tests.fixtures_rag.build import DOCS

    index = open_index(tmp_path / "documents")
    index.ingest([str(DOCS / "kettle.md"), str(DOCS / "garden.rst")])
    candidates = index.search("how do i descale the kettle", k=20)
    reranker = Reranker(tiny_cross_encoder(tmp_path / "ce"))
    index.reranker = reranker
    hits = index.search("how do i descale the kettle", k=2)
    assert hits == reranker.rerank("how do i descale the kettle", candidates, k=2)
    assert len(candidates) == 5 and len(hits) == 2
