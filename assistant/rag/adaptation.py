"""`assistant train embeddings`: mine pairs, train, judge, register, re-embed, switch.

The adapted model (saved as a blend with its base, see :data:`adapt.DEFAULT_BLEND`) is
judged, blended as it will serve, against the model the index serves now on pairs held out
from other files, pair by pair; it is refused when it ranks them worse beyond noise (the
95% paired-bootstrap interval of the difference lies below zero; ``force`` overrides).
A drop within noise is not a refusal: on bench/retrieval.py's Debian corpus the mined-pair
score fell 0.020 while real questions gained 0.039 nDCG@10 (sign test p = 0.011).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.rag import adapt
from assistant.rag.embeddings import DEFAULT_MODEL, Embedder, resolve_model_path
from assistant.rag.reembed import Embeddings, ReembedReport, base_embeddings, pending, reembed


@dataclass
class AdaptReport:
    """What one adaptation did, with the numbers that decided the switch."""

    name: str
    path: str
    pairs: dict[str, int] = field(default_factory=dict)  # training pairs per kind
    held_out: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    current_score: float = 0.0  # nDCG@10 on the held-out pairs, the served model
    adapted_score: float = 0.0  # the same for the adapted model
    difference_ci95: list[float] = field(default_factory=list)  # adapted - current, paired
    switched: bool = False
    reason: str = ""
    reembed: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


def _rows(index: Any) -> list[dict[str, Any]]:
    with index.catalog.lock:
        return list(
            index.catalog.db.execute_returning_dicts(
                "SELECT id, path, ordinal, heading, text FROM chunks"
            )
        )


def mine(index: Any, seed: int = 0) -> adapt.Mined:
    """Pairs from the index's chunks, hard negatives from its vectors, split by file."""
    from assistant.rag.index import _embed_text

    rows = _rows(index)
    if len(rows) < adapt.MIN_CHUNKS:
        raise adapt.AdaptError(
            f"only {len(rows)} chunks are indexed; ingest more documents first "
            f"(at least {adapt.MIN_CHUNKS} chunks)"
        )
    texts = {r["id"]: _embed_text(r["heading"] or "", r["text"]) for r in rows}
    pairs = adapt.pairs_from_chunks(rows, seed)
    pairs = adapt.add_hard_negatives(pairs, index.store.neighbours, texts)
    return adapt.split(pairs)


def pin_threads(threads: int | None = None) -> None:
    """Give torch ``threads`` CPU threads (default: half the cores): training on all of
    them would starve the chat model answering meanwhile, and spinning threads thrash.
    Every training command pins its threads here.

    Raises:
        ConfigError: torch is not installed (the [train] extra).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(
            "training needs the [train] extra; run `pip install -e '.[train]'` (or `make chat`)"
        ) from exc
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // 2))


def quiet_loading() -> None:
    """No "Loading weights" bar on stderr for each model load (it would garble --json)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def adapt_index(
    index_home: Path,
    data_home: Path,
    *,
    base: str | None = None,
    name: str | None = None,
    chroma_server: str | None = None,
    seconds: float = 300.0,
    max_steps: int = 2000,
    batch_size: int = 16,
    force: bool = False,
    progress: bool = True,
    reembed_progress: Callable[[int, int], None] | None = None,
    say: Callable[[str], None] = lambda line: None,
    candidate: Path | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    keep: float = adapt.DEFAULT_KEEP,
    blend: float = adapt.DEFAULT_BLEND,
) -> AdaptReport:
    """Adapt ``base`` (default: the bundled MiniLM) to the documents under ``index_home``.

    ``candidate`` skips training and judges that model directory instead (what a test
    uses to offer a model known to be worse).

    Raises:
        AdaptError: too few chunks, or nothing could be mined.
        ConfigError: a re-embed is unfinished (resume it first) or the name is taken.
    """
    from assistant.rag.index import open_index
    from assistant.registry import ModelRegistry, check_name

    unfinished = pending(index_home)
    if unfinished is not None:
        raise ConfigError(
            f"re-embedding into {unfinished.collection!r} did not finish; run "
            "`assistant train embeddings --resume` first"
        )
    name = name or datetime.now(UTC).strftime("docs-%Y%m%d-%H%M%S")
    check_name(name)  # before minutes of training, and never a path ("../x")
    out = data_home / "embeddings" / name
    if out.exists() or ModelRegistry(data_home)._has(name):
        raise ConfigError(f"an embedding model named {name!r} exists; choose another --name")
    index = open_index(index_home, embedding_model=base, chroma_server=chroma_server)
    mined = mine(index)
    kinds = Counter(p.kind for p in mined.train)
    listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    say(
        f"mined {len(mined.train)} training pairs ({listed}) "
        f"and {len(mined.held_out)} held-out pairs from {index.catalog.chunk_count()} chunks"
    )
    report = AdaptReport(name, str(out), dict(kinds), len(mined.held_out))
    if candidate is None:
        quiet_loading()
        started = time.monotonic()
        result = adapt.train(
            resolve_model_path(base),
            mined.train,
            out,
            seconds=seconds,
            max_steps=max_steps,
            batch_size=batch_size,
            progress=progress,
            on_step=on_step,
            keep=keep,
            blend=blend,
        )
        report.steps, report.train_seconds = result.steps, time.monotonic() - started
        say(f"trained {result.steps} steps in {report.train_seconds:.0f} s")
    else:
        out = candidate
        report.path = str(out)
    ModelRegistry(data_home).add_embedding(out, name, base or DEFAULT_MODEL)
    quiet_loading()
    import torch

    adapted = Embedder(str(out), threads=torch.get_num_threads())  # blended, as it will serve
    verdict = adapt.judge(
        adapt.scores(index.embedder.encode, mined.held_out),
        adapt.scores(adapted.encode, mined.held_out),
    )
    report.current_score, report.adapted_score = verdict.current, verdict.adapted
    report.difference_ci95 = [verdict.low, verdict.high]
    say(
        f"held-out nDCG@10: current {verdict.current:.4f}, adapted {verdict.adapted:.4f} "
        f"(difference 95% interval {verdict.low:+.4f} to {verdict.high:+.4f})"
    )
    if verdict.worse and not force:
        report.reason = (
            f"not switched: the adapted model ranks the held-out pairs worse "
            f"({verdict.adapted:.4f} vs {verdict.current:.4f}, beyond noise); it stays "
            f"registered as {name!r}"
        )
        say(report.reason)
        return report
    target = Embeddings(f"documents-{name}", str(out.resolve()), name)
    done = reembed(
        index_home,
        index.catalog,
        target,
        server=chroma_server,
        progress=reembed_progress,
        previous_model=base,
    )
    report.switched, report.reembed = done.switched, done.as_dict()
    say(f"re-embedded {done.embedded} chunks in {done.seconds:.0f} s; now serving {name!r}")
    return report


def resume(
    index_home: Path,
    *,
    embedding_model: str | None = None,
    chroma_server: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReembedReport:
    """Finish an interrupted re-embed (the served embeddings were untouched until now).

    Raises:
        ConfigError: there is nothing to resume.
    """
    from assistant.rag.index import open_index

    target = pending(index_home)
    if target is None:
        raise ConfigError("no re-embedding to resume")
    index = open_index(index_home, embedding_model=embedding_model, chroma_server=chroma_server)
    return reembed(
        index_home,
        index.catalog,
        target,
        server=chroma_server,
        progress=progress,
        previous_model=embedding_model,
    )


def revert(
    index_home: Path,
    *,
    embedding_model: str | None = None,
    chroma_server: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReembedReport:
    """Serve the configured (unadapted) ``embedding_model`` again, or for the first time
    after the setting changed: its collection is filled (vectors it still holds are
    reused) and switched to, kill -9 safe as any re-embed.

    Raises:
        ConfigError: a re-embed is unfinished (resume it first).
    """
    from assistant.rag.index import open_index

    if pending(index_home) is not None:
        raise ConfigError(
            "a re-embedding did not finish; run `assistant train embeddings --resume` first"
        )
    index = open_index(index_home, embedding_model=embedding_model, chroma_server=chroma_server)
    return reembed(
        index_home,
        index.catalog,
        base_embeddings(embedding_model),
        server=chroma_server,
        progress=progress,
        previous_model=embedding_model,
    )
