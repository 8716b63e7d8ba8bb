"""Adapt the embedding model to the indexed documents, with no labels.

Training pairs are mined from the catalog's own chunks: a section's heading and its text, a
sentence and the rest of its chunk (the inverse cloze task), a file's title and its first
chunk. Each pair gets a hard negative from the current dense index: the nearest chunk of
another file. sentence-transformers' own trainer fits them with
``MultipleNegativesRankingLoss`` (in-batch negatives plus the hard one) under a time budget.

Pairs from about a tenth of the files are held out; :func:`scores` ranks their positives
for their anchors, so the adapted model is compared with the current one on text neither
was trained on, pair by pair (:func:`judge`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.rag.embeddings import write_blend

# The share of the tuned weights kept, the rest the base model's (weight-space
# interpolation). Measured with bench/retrieval.py --adapt (nDCG@10 change on real
# questions, keep 1.0 vs 0.5): Debian +0.052 vs +0.057, PostgreSQL manual -0.042 (p = 0.01)
# vs -0.023 (p = 0.24): as good where adapting helps, half the loss where it hurts.
DEFAULT_KEEP = 0.5
# The adapted model's share of search similarity, the rest the base model's (a blend: see
# assistant.rag.embeddings.BLEND_FILE). Fixed at an even split before it was measured.
# bench/retrieval.py --adapt, hybrid nDCG@10 change, blend vs the adapted model alone, same
# run: Debian +0.048 vs +0.058 (both p < 0.01); PostgreSQL manual -0.009 vs -0.035;
# git/SQLite FAQ -0.008 vs -0.019; SQLite manual +0.010 vs +0.001; git manual +0.008 vs
# +0.005: most of the gain where adapting helps, a quarter of the loss where it hurts.
DEFAULT_BLEND = 0.5
# Fewer chunks than this give too few pairs to learn from or to judge the result on.
MIN_CHUNKS = 20
HELD_OUT_SHARE = 0.1
MAX_HELD_OUT = 120
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(])|\n{2,}")
# A stored vector this close to the positive's is a copy of it, not a negative.
_DUPLICATE_SIMILARITY = 0.97


class AdaptError(AssistantError):
    """The documents cannot be used to adapt the embedding model (say why)."""


@dataclass(frozen=True)
class Pair:
    """One mined training example: ``anchor`` should find ``positive`` (not ``negative``)."""

    anchor: str
    positive: str
    kind: str  # "heading", "sentence" or "title"
    path: str
    chunk_id: str
    negative: str = ""


@dataclass(frozen=True)
class Mined:
    """Training pairs and the held-out pairs (from other files) used to judge a model."""

    train: list[Pair]
    held_out: list[Pair]


def _words(text: str) -> int:
    return len(text.split())


def sentences(text: str) -> list[str]:
    """Split text into sentence-like pieces (on ., ! or ? before a capital, or blank lines)."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def pairs_from_chunks(rows: list[dict[str, Any]], seed: int = 0) -> list[Pair]:
    """Mine pairs from catalog chunk rows (``id``, ``path``, ``heading``, ``text``, ``ordinal``).

    - heading: the last part of a section's heading path and the text of its first chunk;
    - sentence: one sentence (6-40 words) and the rest of its chunk, heading included;
    - title: a file's title (first heading, else its file name) and its first chunk.
    """
    rng = random.Random(seed)
    pairs: list[Pair] = []
    seen_headings: set[tuple[str, str]] = set()
    first_of_file: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["path"], r["ordinal"])):
        path, heading, text = row["path"], row["heading"] or "", row["text"]
        first_of_file.setdefault(path, row)
        parts = [p.strip() for p in heading.split(" > ") if p.strip()]
        if parts and (path, heading) not in seen_headings and _words(text) >= 12:
            seen_headings.add((path, heading))
            if _words(parts[-1]) >= 2 or len(parts[-1]) >= 8:
                pairs.append(Pair(parts[-1], text, "heading", path, row["id"]))
        pieces = sentences(text)
        candidates = [i for i, s in enumerate(pieces) if 6 <= _words(s) <= 40]
        if candidates and len(pieces) > 1:
            pick = rng.choice(candidates)
            rest = " ".join(p for i, p in enumerate(pieces) if i != pick)
            if _words(rest) >= 15:
                context = f"{heading}\n{rest}" if heading else rest
                pairs.append(Pair(pieces[pick], context, "sentence", path, row["id"]))
    for path, row in first_of_file.items():
        heading = (row["heading"] or "").split(" > ")[0].strip()
        title = heading or Path(path).stem.replace("_", " ").replace("-", " ")
        if _words(row["text"]) >= 12 and len(title) >= 4:
            pairs.append(Pair(title, row["text"], "title", path, row["id"]))
    return pairs


def add_hard_negatives(
    pairs: list[Pair],
    neighbours: Callable[[list[str]], dict[str, list[tuple[str, float, str]]]],
    texts: dict[str, str],
) -> list[Pair]:
    """Give each pair the nearest chunk of another file as its negative (when there is one).

    ``neighbours`` maps chunk ids to ``(chunk id, similarity, path)`` nearest first, from
    the current index; ``texts`` maps chunk ids to what was embedded.
    """
    near = neighbours(sorted({p.chunk_id for p in pairs}))
    out = []
    for pair in pairs:
        negative = next(
            (
                texts[cid]
                for cid, sim, path in near.get(pair.chunk_id, [])
                if path != pair.path and sim < _DUPLICATE_SIMILARITY and cid in texts
            ),
            "",
        )
        out.append(Pair(pair.anchor, pair.positive, pair.kind, pair.path, pair.chunk_id, negative))
    return out


def split(pairs: list[Pair], share: float = HELD_OUT_SHARE, limit: int = MAX_HELD_OUT) -> Mined:
    """Hold out the pairs of about ``share`` of the files (at most ``limit`` pairs).

    Files are taken in a stable hash order of their paths below the folder they share, so
    re-runs (and copies of the same folder) hold out the same ones, until at least ``share``
    of the pairs (and 10, when there are 50) are held out. A file with more pairs than the
    room left is passed over: its pairs would be lost to training beyond ``limit``. When
    every file is that big, chunks are held out instead, as for a single file.
    """
    found = {p.path for p in pairs}
    root = os.path.commonpath(found) if len(found) > 1 else ""
    paths = sorted(found, key=lambda p: hashlib.sha1(os.path.relpath(p, root).encode()).hexdigest())
    per_path: dict[str, int] = {}
    for pair in pairs:
        per_path[pair.path] = per_path.get(pair.path, 0) + 1
    wanted = max(share * len(pairs), min(10, len(pairs) // 5))
    held: set[str] = set()
    count = 0
    for path in paths[:-1]:  # at least one file is always left to train on
        if count >= wanted:
            break
        if count + per_path[path] <= limit:
            held.add(path)
            count += per_path[path]
    if not held:  # one file, or only files too big to hold out whole: hold out chunks
        ids = sorted({p.chunk_id for p in pairs})
        cut = set(ids[:: max(2, round(1 / share))])
        return Mined(
            [p for p in pairs if p.chunk_id not in cut], [p for p in pairs if p.chunk_id in cut]
        )
    return Mined([p for p in pairs if p.path not in held], [p for p in pairs if p.path in held])


def scores(encode: Callable[[list[str]], Any], held_out: list[Pair]) -> list[float]:
    """Per pair, nDCG@10 of a model (its ``encode``, normalized rows) ranking its positive
    among all held-out texts.

    The texts are every held-out pair's positive and hard negative; one is relevant, so a
    pair scores ``1 / log2(1 + rank)`` when its positive is in the top 10, else 0.
    """
    import numpy as np

    if not held_out:
        raise AdaptError("no held-out pairs to judge the model on")
    texts: dict[str, int] = {}
    for pair in held_out:
        for text in (pair.positive, pair.negative):
            if text and text not in texts:
                texts[text] = len(texts)
    corpus = encode(list(texts))
    queries = encode([p.anchor for p in held_out])
    similarity = np.asarray(queries) @ np.asarray(corpus).T
    out = []
    for row, pair in zip(similarity, held_out, strict=True):
        own = row[texts[pair.positive]]
        rank = 1 + int((row > own).sum())
        out.append(1.0 / math.log2(1 + rank) if rank <= 10 else 0.0)
    return out


@dataclass(frozen=True)
class Verdict:
    """The adapted model against the current one on the same held-out pairs."""

    current: float  # mean nDCG@10
    adapted: float
    low: float  # 95% paired-bootstrap interval of adapted - current
    high: float

    @property
    def worse(self) -> bool:
        """Worse beyond noise: the whole interval is below zero."""
        return self.high < 0


def judge(current: list[float], adapted: list[float], seed: int = 0) -> Verdict:
    """Compare per-pair scores with a paired bootstrap (10,000 resamples)."""
    import numpy as np

    diff = np.asarray(adapted) - np.asarray(current)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(10000, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Verdict(
        float(np.mean(current)),
        float(np.mean(adapted)),
        float(round(low, 4)),
        float(round(high, 4)),
    )


def _time_budget(seconds: float, on_step: Callable[[int, int, float], None] | None = None) -> Any:
    """A trainer callback that stops training once ``seconds`` have passed, telling
    ``on_step(step, max_steps, elapsed_seconds)`` after every step."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.monotonic()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            elapsed = time.monotonic() - self.started
            if on_step is not None:
                on_step(int(state.global_step), int(state.max_steps), elapsed)
            if elapsed >= seconds:
                control.should_training_stop = True

    return TimeBudget()


@dataclass(frozen=True)
class TrainResult:
    """What a training run did."""

    steps: int
    seconds: float
    pairs: int


def train(
    base: Path,
    pairs: list[Pair],
    out: Path,
    *,
    seconds: float = 300.0,
    max_steps: int = 2000,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    max_length: int = 128,
    seed: int = 0,
    progress: bool = True,
    on_step: Callable[[int, int, float], None] | None = None,
    keep: float = DEFAULT_KEEP,
    blend: float = DEFAULT_BLEND,
) -> TrainResult:
    """Fine-tune the sentence-transformers model at ``base`` on ``pairs``; save it to ``out``.

    Texts are cut at ``max_length`` word pieces while training (half the cost of the
    256 the index embeds with; the start of a chunk carries its topic).

    ``keep`` < 1 saves the weights ``keep * tuned + (1 - keep) * base`` (weight-space
    interpolation, which keeps more of the base model's robustness). ``blend`` < 1 saves
    it as a blend with ``base`` (its share of the similarity; see
    :data:`assistant.rag.embeddings.BLEND_FILE`).

    ``on_step(step, max_steps, elapsed_seconds)`` is called after every step (the app's
    status line). Stops at ``seconds``, ``max_steps`` or after ``epochs``, whichever comes
    first; the
    learning rate stays constant after a short warm-up, so a run cut short by the time
    budget is as finished as one that ran out of pairs.
    """
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if not pairs:
        raise AdaptError("no training pairs were mined from the documents")
    started = time.monotonic()
    model = SentenceTransformer(str(base), device="cpu")
    model.max_seq_length = max_length
    columns: dict[str, list[str]] = {
        "anchor": [p.anchor for p in pairs],
        "positive": [p.positive for p in pairs],
    }
    if all(p.negative for p in pairs):
        columns["negative"] = [p.negative for p in pairs]
    else:  # MNRL needs every row to have the same columns: drop negatives rather than pad
        columns = {"anchor": columns["anchor"], "positive": columns["positive"]}
    dataset = Dataset.from_dict(columns).shuffle(seed=seed)
    steps_per_epoch = max(1, len(pairs) // batch_size)
    with tempfile.TemporaryDirectory(prefix="embed-train-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            max_steps=min(max_steps, steps_per_epoch * epochs),
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=min(10, steps_per_epoch),
            batch_sampler="no_duplicates",
            save_strategy="no",
            report_to="none",
            logging_strategy="no",
            use_cpu=True,
            seed=seed,
            disable_tqdm=not progress,
            dataloader_num_workers=0,
        )
        # The trainer prints its model card's progress and its metrics itself.
        quiet = contextlib.ExitStack()
        if not progress:
            quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
            quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
        with quiet:
            trainer = SentenceTransformerTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                loss=MultipleNegativesRankingLoss(model),
                callbacks=[_time_budget(seconds, on_step)],
            )
            trainer.train()
    steps = int(trainer.state.global_step)
    if keep < 1.0:
        _interpolate(model, SentenceTransformer(str(base), device="cpu"), keep)
    partial = out.with_name(out.name + ".partial")
    model.save(str(partial))
    if blend < 1.0:
        write_blend(partial, base, blend)
    partial.rename(out)  # a kill before this leaves only the .partial folder
    return TrainResult(steps, time.monotonic() - started, len(pairs))


def _interpolate(tuned: Any, base: Any, keep: float) -> None:
    """Move ``tuned``'s weights to ``keep * tuned + (1 - keep) * base``, in place."""
    import torch

    reference = dict(base.named_parameters())
    with torch.no_grad():
        for name, parameter in tuned.named_parameters():
            parameter.mul_(keep).add_(reference[name].to(parameter.dtype), alpha=1.0 - keep)
