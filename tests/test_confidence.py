"""Answer confidence from token log-probabilities, and the AUROC that measures it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assistant.backends.base import GenerationOptions, collect
from assistant.backends.llama_local import LlamaCppBackend
from assistant.confidence import auroc, from_extra, summarize, token_stats


def test_token_stats_is_the_log_softmax_and_its_entropy() -> None:
    logits = np.array([2.0, 1.0, 0.0, -1.0], dtype=np.float32)
    p = np.exp(logits) / np.exp(logits).sum()
    logprob, entropy = token_stats(logits, 1)
    assert logprob == pytest.approx(math.log(p[1]))
    assert entropy == pytest.approx(float(-(p * np.log(p)).sum()))
    # Huge logits do not overflow; a flat distribution has entropy log(n).
    assert token_stats(np.array([1e4, 1e4], dtype=np.float32), 0) == pytest.approx(
        (math.log(0.5), math.log(2))
    )


def test_summarize_is_the_geometric_mean_probability() -> None:
    confidence = summarize([math.log(0.5), math.log(0.125)], [1.0, 3.0])
    assert confidence is not None
    assert confidence.score == pytest.approx(0.25)
    assert (confidence.min_logprob, confidence.mean_entropy, confidence.tokens) == (
        pytest.approx(math.log(0.125)),
        2.0,
        2,
    )
    assert summarize([]) is None


@pytest.mark.parametrize(
    ("extra", "score"),
    [
        ({"logprobs": [0.0, 0.0], "entropies": [0.1, 0.2]}, 1.0),
        ({"logprobs": [math.log(0.5)]}, 0.5),
        ({"logprobs": []}, None),
        ({}, None),  # a backend that records nothing (server, scripted)
        ({"logprobs": "garbled"}, None),
    ],
)
def test_from_extra_reads_what_the_backend_recorded(
    extra: dict[str, object], score: float | None
) -> None:
    confidence = from_extra(extra)
    assert (None if confidence is None else pytest.approx(confidence.score)) == score


@pytest.mark.parametrize(
    ("scores", "labels", "area"),
    [
        ([0.9, 0.8, 0.2, 0.1], [True, True, False, False], 1.0),
        ([0.1, 0.2, 0.8, 0.9], [True, True, False, False], 0.0),
        ([0.5, 0.5, 0.5, 0.5], [True, False, True, False], 0.5),
        ([0.9, 0.3, 0.5, 0.1], [True, True, False, False], 0.75),
        ([0.7, 0.7, 0.2], [True, False, False], 0.75),  # a tie counts one half
        ([0.3, 0.4], [True, True], None),  # one class only
        ([], [], None),
    ],
)
def test_auroc(scores: list[float], labels: list[bool], area: float | None) -> None:
    assert auroc(scores, labels) == area


def test_auroc_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        auroc([0.1], [True, False])


def test_the_local_backend_records_one_logprob_per_generated_token(
    smol: LlamaCppBackend,
) -> None:
    """Structure only: never the tiny model's words."""
    _text, done = collect(
        smol.stream(
            [{"role": "user", "content": "Name a colour."}],
            GenerationOptions(max_tokens=12, temperature=0.0),
        )
    )
    logprobs, entropies = done.extra["logprobs"], done.extra["entropies"]
    assert len(logprobs) == len(entropies) == done.usage.completion_tokens > 0
    assert all(lp <= 0.0 for lp in logprobs) and all(h >= 0.0 for h in entropies)
    confidence = from_extra(done.extra)
    assert confidence is not None and 0.0 < confidence.score <= 1.0
    # Greedy decoding picks the most likely token, so no token is less likely than 1/vocab.
    assert min(logprobs) > -math.log(smol.llama.n_vocab())
