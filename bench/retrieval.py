"""Retrieval quality: keyword (FTS5), dense (MiniLM + chromadb) and the shipped fusion.

Corpus and questions: bench/corpus/python_faq.py (python3.11-doc FAQ questions, answers
indexed without their question heading, plus whole distractor pages). Everything goes
through the real ``DocumentIndex.ingest`` and ``DocumentIndex.rankings``.

Fusion weights are tuned on the even-numbered questions and reported on the odd-numbered
(held-out) ones, so the shipped choice is not graded on the data that picked it.
Embeddings are cached under bench/results/ by text hash, so a re-run only re-embeds new text.

Run: ``python bench/retrieval.py [TARGET_CHUNKS]``. The last line printed is one JSON object.

``python bench/retrieval.py --adapt [--train-seconds S] [CORPUS ...]`` measures
``assistant train embeddings`` instead, on corpora it was never tuned on
(bench/corpus/heldout.py: ``debian`` and ``devtools``; ``python`` is the FAQ above, seen
while choosing the adaptation's defaults): the shipped hybrid search and dense alone
before and after adapting the model to each corpus, per question (chunk level, and file
level with the first chunk of each file standing for it), a paired bootstrap interval and
a sign test on the per-question nDCG@10 differences, and the cost (train and re-embed
seconds). The baseline is the unadapted model in the same run. What is served after is the
blend of the adapted and the base model (``--blend``, as ``train embeddings``); the adapted
model alone is scored from the same vectors, and all corpora's questions are pooled last.
Corpora: ``debian``, ``devtools`` (heldout.py), ``pgdocs``, ``sqlitedocs`` and ``gitdocs``
(the document-QA sets' pages, relevant where a gold answer is).

``python bench/retrieval.py --feedback [CORPUS ...]`` measures pseudo-relevance feedback on
the dense query (not shipped: it helps the PostgreSQL and SQLite manuals and hurts the FAQ
corpora; see ``FEEDBACK``), paired against the shipped hybrid on each half of the questions.

``python bench/retrieval.py --model DIR [CORPUS ...]`` measures another sentence-transformers
model (a directory, as ``rag_embedding_model`` takes) in place of the bundled MiniLM: the
same corpus ingested twice, the shipped hybrid and dense alone with each model, paired over
questions, and the cost (ingest seconds of each).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus.python_faq import build

from assistant.rag import fusion
from assistant.rag.embeddings import Embedder
from assistant.rag.index import DocumentIndex, open_index

RESULTS = Path(__file__).resolve().parent / "results"
K = 10
DEPTH = 40  # what DocumentIndex.search uses for k=10


class CachedEmbedder(Embedder):
    """The real embedder with an on-disk cache keyed by text hash (for re-runs only)."""

    def __init__(self, cache: Path, model: str | None = None) -> None:
        super().__init__(model, threads=int(os.environ.get("ASSISTANT_N_THREADS", "1")))
        self.cache_path = cache
        self.cache: dict[str, NDArray[np.float32]] = {}
        if cache.exists():
            data = np.load(cache)
            self.cache = {key: data[key] for key in data.files}

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = [t for t, k in zip(texts, keys, strict=True) if k not in self.cache]
        if missing:
            for key, vector in zip(
                [hashlib.sha1(t.encode()).hexdigest() for t in missing],
                super().encode(missing),
                strict=True,
            ):
                self.cache[key] = vector
        return np.stack([self.cache[k] for k in keys])

    def save(self) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache_path.with_name(f"{self.cache_path.name}.{os.getpid()}.partial")
        with partial.open("wb") as out:  # whole or not at all: two benches may share a cache
            np.savez(out, **self.cache)
        partial.replace(self.cache_path)


def metrics(ranked: list[str], relevant: set[str]) -> tuple[float, float, float]:
    """nDCG@10, Recall@10 and MRR@10 of one ranking (binary relevance)."""
    top = ranked[:K]
    dcg = sum(1.0 / math.log2(i + 2) for i, c in enumerate(top) if c in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), K)))
    recall = len(relevant & set(top)) / len(relevant)
    mrr = next((1.0 / (i + 1) for i, c in enumerate(top) if c in relevant), 0.0)
    return dcg / ideal, recall, mrr


def mean(rows: list[tuple[float, float, float]]) -> dict[str, float]:
    """Average each metric over questions."""
    names = ("ndcg@10", "recall@10", "mrr@10")
    return {n: round(sum(r[i] for r in rows) / len(rows), 4) for i, n in enumerate(names)}


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    work = Path(tempfile.mkdtemp(prefix="rag-retrieval-"))
    manifest = build(work / "corpus", target)
    embedder = CachedEmbedder(RESULTS / f"retrieval-embeddings-{target}.npz")
    index = open_index(work / "index")
    index.embedder = embedder
    started = time.perf_counter()
    report = index.ingest([str(work / "corpus")])
    embedder.save()
    print(f"ingested {report.chunks} chunks in {time.perf_counter() - started:.0f} s", flush=True)

    questions = manifest["questions"]
    assert isinstance(questions, list)
    per_method: dict[str, list[tuple[float, float, float]]] = {}
    variants: dict[str, object] = {"keyword": None, "dense": None, "shipped": None}
    for w in (0.1, 0.2, 0.3, 0.4, 0.5):
        variants[f"convex_w{w}"] = ("convex", w)
    for w in (1.0, 0.5, 0.3):
        variants[f"rrf_kw{w}"] = ("rrf", w)
    split: dict[str, list[int]] = {"tune": [], "test": []}
    for q in questions:
        sources = {
            row["id"]
            for row in index.catalog.db.execute_returning_dicts(
                "SELECT id FROM chunks WHERE path = ?", [q["source"]]
            )
        }
        r = index.rankings(q["question"], DEPTH, "hybrid")
        ranked = {
            "keyword": [i for i, _ in r.keyword],
            "dense": [i for i, _ in r.dense],
            "shipped": [i for i, _ in r.final],
        }
        for name, spec in variants.items():
            if isinstance(spec, tuple):
                kind, w = spec
                fused = (
                    fusion.convex(r.dense, r.keyword, w)
                    if kind == "convex"
                    else fusion.rrf([(r.dense, 1.0), (r.keyword, w)])
                )
                ranked[name] = [i for i, _ in fused]
            per_method.setdefault(name, []).append(metrics(ranked[name], sources))
        split["tune" if q["id"] % 2 == 0 else "test"].append(len(per_method["dense"]) - 1)

    table = {}
    for name, rows in per_method.items():
        table[name] = {
            "all": mean(rows),
            "tune": mean([rows[i] for i in split["tune"]]),
            "test": mean([rows[i] for i in split["test"]]),
        }
        print(f"{name:14} all {table[name]['all']}  test {table[name]['test']}", flush=True)
    fused_names = [n for n in table if n.startswith(("convex", "rrf"))]
    best = max(fused_names, key=lambda n: table[n]["tune"]["ndcg@10"])
    shipped = table["shipped"]["test"]["ndcg@10"]
    result = {
        "bench": "retrieval",
        "corpus": "python3.11-doc FAQ (answers without question headings) + distractor pages",
        "questions": len(questions),
        "chunks": index.catalog.chunk_count(),
        "tune_questions": len(split["tune"]),
        "test_questions": len(split["test"]),
        "best_on_tune": best,
        "shipped_fusion": f"convex_w{fusion.KEYWORD_WEIGHT}",
        "shipped_beats_both_on_test": shipped
        > max(table["keyword"]["test"]["ndcg@10"], table["dense"]["test"]["ndcg@10"]),
        "results": table,
    }
    print(json.dumps(result))


def by_file(index: DocumentIndex, ranked: list[str]) -> list[str]:
    """Collapse a chunk ranking to files: each file where its best chunk stood."""
    rows = index.catalog.chunks_by_id(ranked)
    seen: dict[str, None] = {}
    for chunk_id in ranked:
        if chunk_id in rows:
            seen.setdefault(rows[chunk_id]["path"], None)
    return list(seen)


def evaluate(
    index: DocumentIndex, questions: list[dict[str, object]], alone: bool = False
) -> dict[str, list[float]]:
    """Per-question nDCG@10 / R@10 of hybrid and dense, at chunk and file level.

    ``alone``: the served model of a blend (an adapted one) without the model blended with
    it, from the first part of each stored vector (what --blend 1 would serve).
    """
    out: dict[str, list[float]] = {}
    rankings = _unblended(index) if alone else index.rankings
    for q in questions:
        sources = [str(x) for x in q.get("sources") or [q["source"]]]  # type: ignore[attr-defined]
        relevant = {
            row["id"]
            for source in sources
            for row in index.catalog.db.execute_returning_dicts(
                "SELECT id FROM chunks WHERE path = ?", [source]
            )
        }
        r = rankings(str(q["question"]), DEPTH, "hybrid")
        for name, ranking in (("hybrid", r.final), ("dense", r.dense)):
            ids = [i for i, _ in ranking]
            ndcg, recall, _ = metrics(ids, relevant)
            f_ndcg, f_recall, _ = metrics(by_file(index, ids), set(sources))
            for key, value in (
                (f"{name}_ndcg", ndcg),
                (f"{name}_recall", recall),
                (f"{name}_file_ndcg", f_ndcg),
                (f"{name}_file_recall", f_recall),
            ):
                out.setdefault(key, []).append(value)
    return out


def _unblended(index: DocumentIndex) -> Any:
    """``index.rankings`` with the dense part from the blended model's own share alone."""
    from assistant.rag.index import Rankings

    own = int(index.embedder.model().get_embedding_dimension())  # its part of each vector
    ids: list[str] = []
    rows: list[NDArray[np.float32]] = []
    offset = 0
    while True:  # every stored vector, in pages
        page = index.store.collection.get(include=["embeddings"], limit=1000, offset=offset)
        ids += [str(i) for i in page["ids"]]
        rows += [np.asarray(v[:own], dtype=np.float32) for v in page["embeddings"]]
        if len(page["ids"]) < 1000:
            break
        offset += len(page["ids"])
    matrix = np.stack(rows)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)

    def rankings(query: str, depth: int, mode: str = "hybrid") -> Rankings:
        scores = matrix @ index.embedder._encode([query])[0]
        top = np.argsort(-scores)[:depth]
        dense = [(ids[i], float(scores[i])) for i in top]
        keyword = index.catalog.keyword_search(query, depth)
        return Rankings(dense, keyword, fusion.fuse(dense, keyword))

    return rankings


def paired(before: list[float], after: list[float], seed: int = 0) -> dict[str, float]:
    """Mean difference, its 95% paired-bootstrap interval, and a two-sided sign test p."""
    diff = np.asarray(after) - np.asarray(before)
    rng = np.random.default_rng(seed)
    means = rng.choice(diff, size=(10000, len(diff)), replace=True).mean(axis=1)
    wins, losses = int((diff > 1e-9).sum()), int((diff < -1e-9).sum())
    n = wins + losses
    tail = sum(math.comb(n, i) for i in range(0, min(wins, losses) + 1)) / 2**n if n else 1.0
    return {
        "mean_diff": round(float(diff.mean()), 4),
        "ci95_low": round(float(np.percentile(means, 2.5)), 4),
        "ci95_high": round(float(np.percentile(means, 97.5)), 4),
        "wins": wins,
        "losses": losses,
        "sign_test_p": round(min(1.0, 2 * tail), 4),
    }


def corpus_questions(name: str, work: Path, target: int) -> list[dict[str, object]]:
    """Write corpus ``name`` (``python`` or a bench/corpus/heldout.py one) under
    ``work / "corpus"`` and return its questions."""
    from corpus.heldout import build as build_heldout

    if name == "python":
        manifest = build(work / "corpus", target)
    else:
        manifest = build_heldout(name, work / "corpus", target)
    questions = manifest["questions"]
    assert isinstance(questions, list)
    return questions


def ingested(name: str, work: Path, home: Path) -> tuple[DocumentIndex, CachedEmbedder]:
    """``work / "corpus"`` ingested into a fresh index at ``home`` with the cached embedder."""
    embedder = CachedEmbedder(RESULTS / f"adapt-embeddings-{name}.npz")
    index = open_index(home)
    index.embedder = embedder
    index.ingest([str(work / "corpus")])
    embedder.save()
    return index, embedder


def adapt_corpus(name: str, train_seconds: float, target: int) -> dict[str, object]:
    """Ingest corpus ``name``, measure, adapt the model to it, re-embed, measure again."""
    from assistant.rag.adaptation import adapt_index

    work = Path(tempfile.mkdtemp(prefix=f"rag-adapt-{name}-"))
    questions = corpus_questions(name, work, target)
    home = work / "home"
    index, _ = ingested(name, work, home / "documents")
    before = evaluate(index, questions)
    report = adapt_index(
        home / "documents", home, seconds=train_seconds, force=True, progress=False,
        say=lambda line: print(f"[{name}] {line}", flush=True), keep=KEEP, blend=BLEND,
    )  # fmt: skip
    served = open_index(home / "documents")
    after = evaluate(served, questions)
    # The adapted model alone (without the base blended in), from the same vectors.
    alone = evaluate(served, questions, alone=True) if served.embedder.partner else after
    summary = {k: round(sum(v) / len(v), 4) for k, v in before.items()}
    adapted = {k: round(sum(v) / len(v), 4) for k, v in after.items()}
    reembed = report.reembed or {}
    for key, scores in (("before", before), ("blend", after), ("alone", alone)):
        POOLED[key] += scores["hybrid_ndcg"]
    result = {
        "corpus": name,
        "questions": len(questions),
        "chunks": index.catalog.chunk_count(),
        "before": summary,
        "after": adapted,
        "paired_hybrid_ndcg": paired(before["hybrid_ndcg"], after["hybrid_ndcg"]),
        "paired_hybrid_file_ndcg": paired(before["hybrid_file_ndcg"], after["hybrid_file_ndcg"]),
        "paired_dense_ndcg": paired(before["dense_ndcg"], after["dense_ndcg"]),
        "adapted_alone": {k: round(sum(v) / len(v), 4) for k, v in alone.items()},
        "paired_adapted_alone_hybrid_ndcg": paired(before["hybrid_ndcg"], alone["hybrid_ndcg"]),
        "paired_blend_vs_alone_hybrid_ndcg": paired(alone["hybrid_ndcg"], after["hybrid_ndcg"]),
        "held_out_pairs": report.held_out,
        "held_out_ndcg_current": round(report.current_score, 4),
        "held_out_ndcg_adapted": round(report.adapted_score, 4),
        "held_out_difference_ci95": report.difference_ci95,
        "guard_would_switch": report.difference_ci95[1] >= 0,
        "train_pairs": report.pairs,
        "train_steps": report.steps,
        "train_seconds": round(report.train_seconds, 1),
        "reembed_seconds": round(float(reembed.get("seconds", 0.0)), 1),
    }
    print(json.dumps(result), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return result


def chunking_corpus(name: str, target: int) -> dict[str, object]:
    """File-level retrieval with word-counted chunks against tokenizer-counted ones."""
    work = Path(tempfile.mkdtemp(prefix=f"rag-chunks-{name}-"))
    questions = corpus_questions(name, work, target)
    cache = RESULTS / f"adapt-embeddings-{name}.npz"
    scores, chunks, seconds = {}, {}, {}
    import functools

    import assistant.rag.index as index_module

    shipped = index_module.__dict__["chunk_sections"]
    for variant in ("words", "tokens"):
        embedder = CachedEmbedder(cache)
        index = open_index(work / variant / "documents")
        index.embedder = embedder
        started = time.perf_counter()
        if variant == "tokens":  # the ingest's chunker, counting the embedder's word pieces
            counted = functools.partial(shipped, count_tokens=embedder.count_tokens)
            setattr(index_module, "chunk_sections", counted)  # noqa: B010
        try:
            index.ingest([str(work / "corpus")])
        finally:
            setattr(index_module, "chunk_sections", shipped)  # noqa: B010
        seconds[variant] = round(time.perf_counter() - started, 1)
        embedder.save()
        chunks[variant] = index.catalog.chunk_count()
        scores[variant] = evaluate(index, questions)
    result = {
        "corpus": name,
        "questions": len(questions),
        "chunks": chunks,
        "ingest_seconds": seconds,
        **{
            variant: {k: round(sum(v) / len(v), 4) for k, v in found.items() if "file" in k}
            for variant, found in scores.items()
        },
        "paired_hybrid_file_ndcg": paired(
            scores["words"]["hybrid_file_ndcg"], scores["tokens"]["hybrid_file_ndcg"]
        ),
        "paired_dense_file_ndcg": paired(
            scores["words"]["dense_file_ndcg"], scores["tokens"]["dense_file_ndcg"]
        ),
    }
    print(json.dumps(result), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return result


# Query feedback variants (--feedback): (name, feedback chunks, weight, gated). Gated: only
# when at least 3 of the feedback chunks share the first hit's file.
FEEDBACK = [("rocchio5", 5, 0.5, False), ("rocchio5_w1", 5, 1.0, False), ("gated5", 5, 0.5, True)]


def feedback_corpus(name: str, target: int) -> dict[str, object]:
    """Pseudo-relevance feedback on the dense query (Rocchio: the query vector plus ``weight``
    times the mean of the first fused hits' vectors, then fused with the same keyword list)
    against the shipped hybrid, per question, on both halves of the questions."""
    work = Path(tempfile.mkdtemp(prefix=f"rag-feedback-{name}-"))
    questions = corpus_questions(name, work, target)
    index, embedder = ingested(name, work, work / "documents")
    stored = index.store.collection.get(include=["embeddings"])
    vectors = {
        str(i): np.asarray(v, dtype=np.float32)
        for i, v in zip(stored["ids"], stored["embeddings"], strict=True)
    }
    rows = index.catalog.db.execute_returning_dicts("SELECT id, path FROM chunks")
    paths = {str(r["id"]): str(r["path"]) for r in rows}
    scores: dict[str, list[float]] = {"shipped": [], **{v[0]: [] for v in FEEDBACK}}
    for q in questions:
        sources = [str(x) for x in q.get("sources") or [q["source"]]]
        relevant = {i for i, path in paths.items() if path in sources}
        query = embedder.encode([str(q["question"])])[0]
        dense = index.store.query(query, DEPTH)
        keyword = index.catalog.keyword_search(str(q["question"]), DEPTH)
        first = fusion.fuse(dense, keyword)
        scores["shipped"].append(metrics([i for i, _ in first], relevant)[0])
        for variant, k, weight, gated in FEEDBACK:
            top = [i for i, _ in first[:k]]
            same = sum(paths[i] == paths[top[0]] for i in top) if top else 0
            ranked = first
            if top and not (gated and same < 3):
                moved = query + weight * np.mean([vectors[i] for i in top], axis=0)
                moved = (moved / np.linalg.norm(moved)).astype(np.float32)
                ranked = fusion.fuse(index.store.query(moved, DEPTH), keyword)
            scores[variant].append(metrics([i for i, _ in ranked], relevant)[0])
    base = scores["shipped"]
    result: dict[str, object] = {
        "corpus": name,
        "questions": len(questions),
        "chunks": index.catalog.chunk_count(),
        "shipped_ndcg": round(float(np.mean(base)), 4),
    }
    for variant, *_ in FEEDBACK:
        found = scores[variant]
        result[variant] = {
            half: paired(base[start::2], found[start::2])
            for half, start in (("even", 0), ("odd", 1))
        }
    print(json.dumps(result), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return result


def model_corpus(name: str, model: str, target: int) -> dict[str, object]:
    """Corpus ``name`` ingested with the bundled model and with ``model``, paired per question."""
    work = Path(tempfile.mkdtemp(prefix=f"rag-model-{name}-"))
    questions = corpus_questions(name, work, target)
    other = Path(model).name
    scores, seconds, chunks = {}, {}, {}
    for variant, path, cache in (
        ("bundled", None, RESULTS / f"adapt-embeddings-{name}.npz"),
        (other, model, RESULTS / f"model-embeddings-{other}-{name}.npz"),
    ):
        embedder = CachedEmbedder(cache, path)
        index = open_index(work / variant / "documents", embedding_model=path)
        index.embedder = embedder
        started = time.perf_counter()
        index.ingest([str(work / "corpus")])
        seconds[variant] = round(time.perf_counter() - started, 1)
        embedder.save()
        chunks[variant] = index.catalog.chunk_count()
        scores[variant] = evaluate(index, questions)
    before, after = scores["bundled"], scores[other]
    result: dict[str, object] = {
        "corpus": name,
        "model": other,
        "questions": len(questions),
        "chunks": chunks,
        "ingest_seconds": seconds,
        "bundled": {k: round(sum(v) / len(v), 4) for k, v in before.items()},
        other: {k: round(sum(v) / len(v), 4) for k, v in after.items()},
        **{
            f"paired_{key}": paired(before[key], after[key])
            for key in ("hybrid_ndcg", "hybrid_file_ndcg", "dense_ndcg", "dense_file_ndcg")
        },
    }
    print(json.dumps(result), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return result


KEEP = 0.5  # --keep: the share of the tuned weights kept (as adapt.DEFAULT_KEEP)
BLEND = 0.5  # --blend: the adapted model's share of search similarity (as adapt.DEFAULT_BLEND)
POOLED: dict[str, list[float]] = {"before": [], "blend": [], "alone": []}  # every corpus's


def main_adapt(argv: list[str]) -> None:
    """``--adapt``: before/after adaptation on each named corpus, one JSON line last."""
    import torch

    torch.set_num_threads(int(os.environ.get("ASSISTANT_N_THREADS", "1")))
    seconds, target, names = 240.0, 1500, []
    args = iter(argv)
    for arg in args:
        if arg == "--train-seconds":
            seconds = float(next(args))
        elif arg == "--keep":
            global KEEP
            KEEP = float(next(args))
        elif arg == "--blend":
            global BLEND
            BLEND = float(next(args))
        elif arg == "--target":
            target = int(next(args))
        else:
            names.append(arg)
    started = time.perf_counter()
    results = [adapt_corpus(n, seconds, target) for n in names or ["debian", "devtools"]]
    print(
        json.dumps(
            {
                "bench": "retrieval-adapt",
                "train_seconds_budget": seconds,
                "keep": KEEP,
                "blend": BLEND,
                "seconds": round(time.perf_counter() - started, 1),
                "corpora": results,
                # Every corpus's questions together, paired (hybrid nDCG@10 before vs after).
                "pooled_questions": len(POOLED["before"]),
                "pooled_blend_hybrid_ndcg": paired(POOLED["before"], POOLED["blend"]),
                "pooled_adapted_alone_hybrid_ndcg": paired(POOLED["before"], POOLED["alone"]),
            }
        )
    )


if __name__ == "__main__":
    if "--chunking" in sys.argv:
        names = [a for a in sys.argv[1:] if not a.startswith("--")] or ["debian", "devtools"]
        found = [chunking_corpus(n, 1500) for n in names]
        print(json.dumps({"bench": "retrieval-chunking", "corpora": found}))
    elif "--feedback" in sys.argv:
        names = [a for a in sys.argv[1:] if not a.startswith("--")]
        names = names or ["debian", "devtools", "pgdocs", "sqlitedocs", "python"]
        found = [feedback_corpus(n, 2000 if n == "python" else 1500) for n in names]
        print(json.dumps({"bench": "retrieval-feedback", "corpora": found}))
    elif "--model" in sys.argv:
        at = sys.argv.index("--model")
        model = sys.argv[at + 1]
        names = [a for a in sys.argv[1:at] + sys.argv[at + 2 :] if not a.startswith("--")]
        names = names or ["debian", "devtools", "pgdocs", "sqlitedocs"]
        found = [model_corpus(n, model, 1500) for n in names]
        print(json.dumps({"bench": "retrieval-model", "model": Path(model).name, "corpora": found}))
    elif "--adapt" in sys.argv:
        main_adapt([a for a in sys.argv[1:] if a != "--adapt"])
    else:
        main()
