"""Optional cross-encoder reranking with a local model the user configures.

No cross-encoder ships inside a wheel today, so this stage is off unless
``rag_reranker_model`` names a sentence-transformers CrossEncoder directory.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.rag.index import Hit

_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()


class Reranker:
    """Rescores (query, chunk) pairs with a cross-encoder and reorders hits by that score."""

    def __init__(self, model: str | Path) -> None:
        """Point at a local CrossEncoder directory (loaded on first use).

        Raises:
            ConfigError: the directory does not hold a model.
        """
        self.path = Path(model).expanduser()
        if not (self.path / "config.json").exists():
            raise ConfigError(
                f"no cross-encoder model at {self.path}; set rag_reranker_model to a local "
                "model directory or leave it unset"
            )

    def model(self) -> Any:
        """Return the loaded CrossEncoder (once per process and path)."""
        key = str(self.path)
        with _LOCK:
            if key not in _CACHE:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from sentence_transformers import CrossEncoder

                _CACHE[key] = CrossEncoder(key, device="cpu")
            return _CACHE[key]

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """Relevance score of each text for ``query`` (higher is better)."""
        if not texts:
            return []
        predicted = self.model().predict([(query, t) for t in texts], show_progress_bar=False)
        return [float(s) for s in predicted]

    def rerank(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """Return the ``k`` best of ``hits`` by cross-encoder score (kept in ``score``)."""
        scored = zip(self.scores(query, [h.text for h in hits]), hits, strict=True)
        ranked = sorted(scored, key=lambda pair: -pair[0])[:k]
        return [replace(hit, score=round(score, 6)) for score, hit in ranked]
