"""The ingest soak: kill -9 ``DocumentIndex.ingest`` over a folder of small text files.

The writer logs ``D name status chunks sha`` once a file's progress event came (a file is
committed before its event), and ``E n...`` before each embedding call with the documents
it holds. After each kill a check opens the index as the next run would: the catalog passes
``integrity_check`` (and FTS5's), every committed file is still indexed with its chunks and
their vectors. The next run must embed none of the files committed before ("resumed");
whenever a run gets through, new files arrive and a few change. At the end every file is
indexed with its chunk count, chromadb holds exactly the catalog's chunks, and a keyword
search for each file's own word finds that file first.
"""

from __future__ import annotations

import random
import re
import sqlite3
import zlib
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from soak_memory import VOCAB
from soak_zygote import Figures, Log, check, integrity_problems, run_killed, run_to_end, tail

UNIQUE = re.compile(r"\bzq(\d+)x\b")
# New files per batch at most: a fast CPU doubles the batch (from `batch`) until runs outlast
# the kill delays, so every soak gets its kills in about the same number of runs.
MAX_BATCH = 240


def unique_word(n: int) -> str:
    """The word only document ``n`` holds."""
    return f"zq{n}x"


def doc_text(n: int, version: int = 0) -> str:
    """Document ``n``: 1 to 3 chunks of words, its own word in every line."""
    rng = random.Random(n * 7919 + version)
    lines = []
    for _ in range(3 + rng.randrange(28)):
        words = rng.choices(VOCAB, k=11)
        words.insert(rng.randrange(12), unique_word(n))
        lines.append(" ".join(words))
    return f"Document {n} version {version}\n\n" + "\n".join(lines) + "\n"


class FakeEmbedder:
    """Hashed bag of words (deterministic, instant): stands in for MiniLM in the CI soak."""

    dimension = 64
    name = "soak-hash-64"

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """One normalized row per text."""
        rows = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = zlib.crc32(word.encode())
                rows[i, h % self.dimension] += 1.0 if h & 0x10000 else -1.0
            rows[i, 0] += 1e-3  # never all zeros
        normalized: NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return normalized


class LoggedEmbedder:
    """Logs which documents each embedding call is about to (re)do, then delegates."""

    def __init__(self, inner: Any, log: Log) -> None:
        self.inner = inner
        self.log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """Log the documents of ``texts``, then embed them."""
        names = sorted({int(n) for text in texts for n in UNIQUE.findall(text)})
        self.log.write("E", *names)
        return np.asarray(self.inner.encode(texts), dtype=np.float32)


class IngestSoak:
    """Kill an ingest at random moments; the next one must resume."""

    name = "ingest"

    def __init__(self, work: Path, fake: bool, initial: int = 40, batch: int = 15) -> None:
        self.home = work / "documents"
        self.folder = work / "docs"
        self.logs = work / "logs"
        self.fake = fake
        self.initial = initial
        self.batch = batch
        self.versions: dict[int, int] = {}
        self.changed: dict[str, int] = {}  # file -> the first run that saw it rewritten
        self.seen_lost: set[str] = set()
        self.max_delay_s = 0.9 if fake else 3.0
        if not fake:  # loaded here once (one torch thread: no pool starts); children share it
            from assistant.rag.embeddings import Embedder

            Embedder().model()

    def add_docs(self, count: int) -> None:
        """Write ``count`` new documents into the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        start = len(self.versions)
        for n in range(start, start + count):
            self.versions[n] = 0
            (self.folder / f"{n:05d}.txt").write_text(doc_text(n), encoding="utf-8")

    def change_docs(self, rng: random.Random, count: int, next_run: int) -> list[str]:
        """Rewrite ``count`` existing documents (they must be indexed again); their names."""
        names = []
        for n in rng.sample(sorted(self.versions), min(count, len(self.versions))):
            self.versions[n] += 1
            path = self.folder / f"{n:05d}.txt"
            path.write_text(doc_text(n, self.versions[n]), encoding="utf-8")
            names.append(path.name)
            self.changed[path.name] = next_run
        return names

    def write(self, log: Log) -> None:
        """(child) Ingest the folder, logging each committed file and each embedding call."""
        from assistant.rag.index import Event, open_index

        index = open_index(self.home)
        inner = FakeEmbedder() if self.fake else index.embedder
        index.embedder = cast(Any, LoggedEmbedder(inner, log))  # the same encode()
        index.embed_group_chunks = 8  # commits come in small groups, as with a slow model

        def progress(event: Event) -> None:
            s = event.status
            log.write("D", Path(s.path).name, s.status, s.chunks, s.sha256)

        index.ingest([str(self.folder)], progress)
        log.write("END")

    def inspect(self, final: bool = False) -> dict[str, Any]:
        """(child) Open the index as the next run would and hold it to the logs."""
        from assistant.rag.chunking import chunk_sections
        from assistant.rag.index import file_hash, open_index
        from assistant.rag.loaders import load

        found: dict[str, Any] = {"corrupt": [], "lost": [], "done": [], "checked": 0}
        db = self.home / "catalog.db"
        try:
            index = open_index(self.home)
            found["corrupt"] += integrity_problems(db, "chunks_fts")
            statuses = {Path(s.path).name: s for s in index.sources()}
        except sqlite3.DatabaseError as exc:
            found["corrupt"].append(f"cannot open the catalog: {exc}")
            return found
        current = {p.name: file_hash(p) for p in self.folder.iterdir()}
        # What the writers said they committed, but for files rewritten after they said so.
        promised: dict[str, tuple[int, str]] = {}
        for path in sorted(self.logs.glob("*.log")):
            run = int(path.stem)
            for f in Log(path).lines():
                if f[0] == "D" and f[2] == "indexed" and run >= self.changed.get(f[1], 0):
                    promised[f[1]] = (int(f[3]), f[4])
        for name, (chunks, sha) in promised.items():
            s = statuses.get(name)
            if s is None or (s.status, s.sha256, s.chunks) != ("indexed", sha, chunks):
                found["lost"].append(name)
        found["checked"] = len(promised)
        indexed = {
            name
            for name, s in statuses.items()
            if s.status == "indexed" and s.sha256 == current.get(name)
        }
        done = set(promised) | indexed  # a rerun must skip all of these
        catalog: dict[str, set[str]] = {}
        for path, chunk_id in index.catalog.db.execute("SELECT path, id FROM chunks"):
            catalog.setdefault(Path(path).name, set()).add(chunk_id)
        stored = index.store.collection.get(include=["metadatas"])
        vectors: dict[str, set[str]] = {}
        for chunk_id, meta in zip(stored["ids"], stored["metadatas"] or [], strict=True):
            vectors.setdefault(Path(str(meta["path"])).name, set()).add(chunk_id)
        for name in sorted(done & set(statuses)):
            ids = catalog.get(name, set())
            if len(ids) != statuses[name].chunks:
                found["corrupt"].append(
                    f"{name}: {len(ids)} chunks, catalog says {statuses[name].chunks}"
                )
            if not ids <= vectors.get(name, set()):
                found["lost"].append(f"vectors of {name}")
        found["done"] = sorted(done)
        if final:
            found["corrupt"] += self._final(index, current, indexed, catalog, vectors, statuses)
            found["files"] = len(current)
            found["chunks"] = index.catalog.chunk_count()
            found["expected_chunks"] = sum(
                len(chunk_sections(load(self.folder / name))) for name in current
            )
        return found

    def _final(
        self,
        index: Any,
        current: dict[str, str],
        indexed: set[str],
        catalog: dict[str, set[str]],
        vectors: dict[str, set[str]],
        statuses: dict[str, Any],
    ) -> list[str]:
        """What must hold once an ingest got through: everything indexed, found, in step."""
        from assistant.rag.chunking import chunk_sections
        from assistant.rag.loaders import load

        problems = [f"{name} not indexed at the end" for name in sorted(set(current) - indexed)]
        for name in sorted(indexed):
            chunks = len(chunk_sections(load(self.folder / name)))
            if statuses[name].chunks != chunks:
                problems.append(f"{name}: {statuses[name].chunks} chunks, not {chunks}")
            if vectors.get(name, set()) != catalog.get(name, set()):
                problems.append(f"{name}: chromadb and the catalog hold different chunks")
            hits = index.search(unique_word(int(name.split(".")[0])), k=1, mode="keyword")
            if not hits or Path(hits[0].source).name != name:
                problems.append(f"searching {name}'s own word found {hits[:1]}")
        if index.store.count() != index.catalog.chunk_count():
            problems.append(
                f"chromadb holds {index.store.count()} vectors for "
                f"{index.catalog.chunk_count()} chunks"
            )
        return problems

    def soak(self, figures: Figures, kills: int, rng: random.Random) -> None:
        """Kill ingests ``kills`` times at random moments, checking after each."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.add_docs(self.initial)
        done: set[str] = set()
        pending = 0  # kills whose next run has not yet shown what it skipped
        fresh = True  # the next run has a whole batch of new work before it
        while figures.kills < kills and figures.runs < 4 * kills:
            log, out = Log(self.logs / f"{figures.runs:04d}.log"), self._out(figures.runs)
            delay = rng.uniform(0.05, self.max_delay_s)
            code = run_killed(lambda: self.write(log), delay, out)  # noqa: B023
            if code == 0 and fresh:  # a whole batch outran the kill: the next ones get more
                self.batch = min(2 * self.batch, MAX_BATCH)
            fresh = False
            pending = self._judge(figures, log, done, pending)
            figures.runs += 1
            if code is None:
                figures.kills += 1
                pending += 1
            elif code != 0:
                figures.failed_runs += 1
                figures.problem(f"ingest run {figures.runs} exited with status {code}: {tail(out)}")
            found = self._check(figures, final=False)
            done = set(found["done"])
            if code == 0 or len(done) >= len(self.versions):  # it got through: more work
                self.add_docs(self.batch)
                done -= set(self.change_docs(rng, 3, figures.runs))
                fresh = True
        log, out = Log(self.logs / f"{figures.runs:04d}.log"), self._out(figures.runs)
        code = run_to_end(lambda: self.write(log), output=out)
        figures.runs += 1
        pending = self._judge(figures, log, done, pending)
        if code != 0:
            figures.failed_runs += 1
            figures.problem(f"the last ingest exited with status {code}: {tail(out)}")
        found = self._check(figures, final=True)
        figures.extra = {k: found.get(k) for k in ("files", "chunks", "expected_chunks")}
        figures.extra["unjudged_kills"] = pending
        figures.extra["last_batch"] = self.batch  # new files a run got at the end

    def _out(self, run: int) -> Path:
        return self.logs / f"{run:04d}.out"

    def _judge(self, figures: Figures, log: Log, done: set[str], pending: int) -> int:
        """Count the pending kills resumed (or not) if this run shows what it redid."""
        lines = log.lines()
        embedded = {f"{int(n):05d}.txt" for f in lines if f[0] == "E" for n in f[1:]}
        shown = any(f[0] in ("E", "END") for f in lines)
        if not pending or not shown:
            return pending
        redone = sorted(embedded & done)
        if redone:
            figures.not_resumed += pending
            figures.problem(f"ingest run {figures.runs} embedded committed files {redone[:5]}")
        else:
            figures.resumed += pending
        return 0

    def _check(self, figures: Figures, final: bool) -> dict[str, Any]:
        found = check(lambda: self.inspect(final))
        figures.checked = max(figures.checked, found["checked"])
        new = set(found["lost"]) - self.seen_lost
        self.seen_lost |= new
        figures.lost += len(new)
        for item in sorted(new)[:5]:
            figures.problem(f"ingest: committed {item} missing after kill {figures.kills}")
        if found["corrupt"]:
            figures.corrupt += 1
            figures.problem(f"ingest after kill {figures.kills}: {found['corrupt'][:3]}")
        return found
