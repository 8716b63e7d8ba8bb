"""Fusing keyword and dense rankings. Pure functions over ``(id, score)`` lists.

The shipped method and weight were chosen by ``bench/retrieval.py``: 175 python3.11-doc FAQ
questions over 2,026 chunks, tuned on the even-numbered half, graded on the odd half.
Held-out nDCG@10: keyword (FTS5) 0.424, dense (MiniLM) 0.680, convex fusion with keyword
weight 0.3 (best on the tuning half) 0.706; equal-weight RRF 0.648 and RRF with keyword
weight 0.3 0.682, so plain RRF is worse than dense alone and is not shipped.
"""

from __future__ import annotations

from collections.abc import Sequence

Ranking = Sequence[tuple[str, float]]

# Chosen by measurement in bench/retrieval.py (see the module docstring).
DENSE_WEIGHT = 1.0
KEYWORD_WEIGHT = 0.3
RRF_K = 60


def rrf(rankings: Sequence[tuple[Ranking, float]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion: ``sum(w / (k + rank))`` over the rankings, best first."""
    scores: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, (item, _) in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _minmax(ranking: Ranking) -> dict[str, float]:
    if not ranking:
        return {}
    values = [s for _, s in ranking]
    low, high = min(values), max(values)
    span = high - low
    return {item: (s - low) / span if span > 0 else 1.0 for item, s in ranking}


def convex(dense: Ranking, keyword: Ranking, keyword_weight: float) -> list[tuple[str, float]]:
    """Linear fusion of min-max normalized scores: ``(1-w)*dense + w*keyword``, best first.

    An item missing from one list scores 0 there (it was below that list's cut-off).
    """
    d, kw = _minmax(dense), _minmax(keyword)
    items = set(d) | set(kw)
    fused = {
        i: (1.0 - keyword_weight) * d.get(i, 0.0) + keyword_weight * kw.get(i, 0.0) for i in items
    }
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def fuse(dense: Ranking, keyword: Ranking) -> list[tuple[str, float]]:
    """The shipped fusion (see the module docstring for how it was chosen)."""
    return convex(dense, keyword, KEYWORD_WEIGHT)
