"""Ingest speed against raw SentenceTransformer.encode, re-ingest cost, query latency at 10k.

- ``ratio``: chunks/s of ``DocumentIndex.ingest`` (discover, load, chunk, embed, chromadb,
  SQLite FTS5) divided by chunks/s of ``SentenceTransformer.encode`` on the very same chunk
  texts, same model object, same batch size and thread count, in the same run (raw is timed
  before and after the ingest and averaged, because the CPU is shared).
- ``reingest_ratio``: time of a second ingest of the unchanged folder / the first.
- ``query_p50_ms`` / ``query_p95_ms``: ``DocumentIndex.search(q, k=10)`` end to end (query
  encoding, HNSW, FTS5, fusion, row lookup) on an index of ``query_index_chunks`` chunks. The
  text of every chunk is real python3.11-doc text (so FTS5 does real work); vectors are real
  for the chunks embedded in this run and random unit vectors for the rest, because
  embedding 10k chunks takes 10-40 minutes on this shared 2-core CPU.

Run: ``python bench/ingest.py [INGEST_CHUNKS]``. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus.python_faq import DOC, ensure_docs, faq_answers

from assistant.rag.chunking import chunk_sections
from assistant.rag.embeddings import Embedder
from assistant.rag.index import _embed_text, open_index
from assistant.rag.loaders import LoadError, load

QUERY_CHUNKS = 10_000


def pages() -> list[Path]:
    """Every python3.11-doc HTML page except indexes, in a seeded random order."""
    found = sorted(
        p for p in DOC.rglob("*.html") if not p.name.startswith(("genindex", "py-modindex"))
    )
    random.Random(7).shuffle(found)
    return found


def raw_seconds(embedder: Embedder, texts: list[str]) -> tuple[float, np.ndarray]:
    """Time the bare library call on ``texts`` with the embedder's settings."""
    import torch

    model = embedder.model()
    torch.set_num_threads(embedder.threads)
    started = time.perf_counter()
    vectors = model.encode(
        texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    return time.perf_counter() - started, vectors


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    ensure_docs()
    work = Path(tempfile.mkdtemp(prefix="rag-ingest-"))
    folder = work / "docs"
    folder.mkdir()
    texts: list[str] = []
    all_chunks: list[tuple[str, list]] = []  # (file key, chunks) for the 10k index
    for page in pages():
        try:
            chunks = chunk_sections(load(page))
        except LoadError:
            continue
        if len(texts) < target:
            copy = folder / f"{len(all_chunks):04d}-{page.name}"
            shutil.copy(page, copy)
            texts.extend(_embed_text(c.heading, c.text) for c in chunks)
        all_chunks.append((str(page), chunks))
        if sum(len(c) for _, c in all_chunks) >= QUERY_CHUNKS:
            break

    embedder = Embedder()
    embedder.encode(texts[:32])  # load and warm up the model outside every timing
    raw_before, _ = raw_seconds(embedder, texts)
    index = open_index(work / "index")
    index.embedder = embedder
    first = index.ingest([str(folder)])
    raw_after, raw_vectors = raw_seconds(embedder, texts)
    again = index.ingest([str(folder)])
    assert first.chunks == len(texts), (first.chunks, len(texts))
    assert not again.indexed and len(again.unchanged) == len(first.indexed)
    raw = (raw_before + raw_after) / 2

    # The 10k-chunk index for query latency: real text, real vectors where we have them.
    big = open_index(work / "big")
    big.embedder = embedder
    known = dict(zip(texts, raw_vectors, strict=True))
    rng = np.random.default_rng(0)
    total = 0
    for key, chunks in all_chunks:
        take = chunks[: QUERY_CHUNKS - total]
        if not take:
            break
        vectors = []
        for chunk in take:
            vector = known.get(_embed_text(chunk.heading, chunk.text))
            if vector is None:
                vector = rng.standard_normal(384).astype(np.float32)
                vector /= np.linalg.norm(vector)
            vectors.append(vector)
        ids = [f"{total + n}" for n in range(len(take))]
        big.store.add(ids, np.stack(vectors), [key] * len(ids))
        big.catalog.replace_chunks(key, str(total), ids, take, 0.0)
        total += len(take)
    questions = [q for _, _, q, _ in faq_answers()][:103]
    latencies = []
    for n, question in enumerate(questions):
        started = time.perf_counter()
        big.search(question, k=10)
        if n >= 3:  # the first queries warm caches
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    encode_ms = []
    for question in questions[:50]:
        started = time.perf_counter()
        embedder.encode([question])
        encode_ms.append((time.perf_counter() - started) * 1000)

    result = {
        "bench": "ingest",
        "chunks": first.chunks,
        "files": len(first.indexed),
        "ingest_s": round(first.seconds, 2),
        "raw_encode_s": round(raw, 2),
        "ingest_chunks_per_s": round(first.chunks / first.seconds, 2),
        "raw_chunks_per_s": round(len(texts) / raw, 2),
        "ratio": round(raw / first.seconds, 3),
        "reingest_s": round(again.seconds, 3),
        "reingest_ratio": round(again.seconds / first.seconds, 4),
        "query_index_chunks": big.catalog.chunk_count(),
        "query_real_vectors": sum(1 for _ in known),
        "query_p50_ms": round(statistics.median(latencies), 1),
        "query_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "query_encode_p50_ms": round(statistics.median(encode_ms), 1),
        "torch_threads": embedder.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
