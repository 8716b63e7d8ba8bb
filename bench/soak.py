"""Kill -9 soaks: the memory, ingest and training writers killed at random moments.

Each writer runs in a child forked from this process (the zygote, which imports the heavy
libraries once), is SIGKILLed after a random delay from a seeded RNG, and after each kill
a check holds what is on disk to what the writer had said was committed:

- memory: every committed message and fact is there with its content, partial replies are
  a prefix of the script and marked interrupted, nothing is stored twice, the SQLite file
  passes ``integrity_check`` (and FTS5's).
- ingest: files committed stay indexed, the rerun embeds none of them again ("resumed"),
  the catalog passes ``integrity_check``; at the end every file is indexed with its chunk
  count, its vectors are in chromadb and a search finds its own word.
- training: a rerun resumes from the newest complete checkpoint ("resumed"), no complete
  checkpoint is lost, and each run finishes with the full step count.

Run: ``python bench/soak.py [--kills N] [--writers memory,ingest,training] [--seed S]
[--fake-embedder]``. ``--inject BUG`` plants a known bug in the children (lazy-commit,
redo-ingest, restart-training) to show the checks catch it. The last line printed is one
JSON object: kills per writer, messages_checked, lost, corrupt, ingest_resumed,
training_resumed, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
# One thread per library in every child; set before numpy or torch is imported, so the
# zygote itself starts no BLAS or OpenMP pool.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from soak_zygote import PLANTED, Figures, timed  # noqa: E402

WRITERS = ("memory", "ingest", "training")
INJECT = ("lazy-commit", "redo-ingest", "restart-training")


def make(writer: str, work: Path, args: argparse.Namespace) -> Any:
    """The soak of ``writer``, its libraries imported here in the zygote (nothing opened)."""
    folder = work / writer
    folder.mkdir(parents=True)
    if writer == "memory":
        from soak_memory import MemorySoak

        import assistant.memory.session

        return MemorySoak(folder)
    if writer == "ingest":
        import chromadb  # noqa: F401
        from soak_ingest import IngestSoak

        import assistant.rag.index  # noqa: F401

        return IngestSoak(folder, fake=args.fake_embedder)
    import torch

    torch.set_num_threads(1)  # sets the count only: no thread is started
    import matplotlib
    import peft  # noqa: F401
    from soak_training import TrainingSoak
    from transformers import LlamaForCausalLM, Trainer, TrainerCallback  # noqa: F401

    import training.finetune  # noqa: F401

    matplotlib.use("Agg")
    import matplotlib.pyplot  # the loss plot, drawn at the end of each run

    return TrainingSoak(folder)


def inject(bug: str) -> None:
    """Plant ``bug`` (called first in each writer child; the checks run the real code)."""
    if bug == "lazy-commit":  # a store that says "committed" before it is
        from contextlib import contextmanager

        from assistant.memory.store import MemoryStore

        calls = [0]

        @contextmanager
        def write(self: Any) -> Any:
            with self._lock:
                conn = self.db.conn
                if not conn.in_transaction:
                    conn.execute("BEGIN IMMEDIATE")
                with self.db.atomic():
                    yield self.db
                calls[0] += 1
                if calls[0] % 20 == 0:
                    conn.execute("COMMIT")

        MemoryStore.write = write  # type: ignore[method-assign]
    elif bug == "redo-ingest":  # a resume that forgets what was done
        import assistant.rag.index as index

        index.file_hash = lambda path: os.urandom(32).hex()
    elif bug == "restart-training":  # a resume that starts from scratch
        import training.finetune as finetune

        cast(Any, finetune).resume_point = lambda folder: (None, [])


def summary(results: list[Figures], seconds: float) -> dict[str, Any]:
    """The figures of every writer as one JSON-ready dict (``seconds`` last)."""
    by = {f.writer: f for f in results}

    def of(writer: str, key: str) -> Any:
        return getattr(by[writer], key) if writer in by else None

    return {
        "kills": {f.writer: f.kills for f in results},
        "messages_checked": of("memory", "checked"),
        "files_checked": of("ingest", "checked"),
        "checkpoints_checked": of("training", "checked"),
        "lost": sum(f.lost for f in results),
        "corrupt": sum(f.corrupt for f in results),
        "ingest_resumed": of("ingest", "resumed"),
        "training_resumed": of("training", "resumed"),
        "not_resumed": {f.writer: f.not_resumed for f in results},
        "failed_runs": {f.writer: f.failed_runs for f in results},
        "facts_missing": len(by["memory"].extra.get("facts_missing", []))
        if "memory" in by
        else None,
        "writers": {f.writer: f.as_dict() for f in results},
        "seconds": round(seconds, 1),
    }


def main() -> None:
    """Parse arguments, run the soaks, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills per writer")
    parser.add_argument("--writers", default=",".join(WRITERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fake-embedder", action="store_true", help="hashing, not MiniLM")
    parser.add_argument("--inject", choices=INJECT, help="plant a bug the soak must catch")
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args()
    writers = [w for w in args.writers.split(",") if w]
    unknown = set(writers) - set(WRITERS)
    if unknown:
        parser.error(f"unknown writers {sorted(unknown)}; choose from {', '.join(WRITERS)}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = args.work or Path(tmp)
        soaks = [make(w, work, args) for w in writers]
        if args.inject:
            PLANTED.append(lambda: inject(args.inject))
        results = []
        for n, soak in enumerate(soaks):
            rng = random.Random(f"{args.seed}-{soak.name}-{n}")
            figures = Figures(soak.name)
            results.append(timed(figures, lambda: soak.soak(figures, args.kills, rng)))  # noqa: B023
            print(_line(figures), flush=True)
    data = summary(results, time.monotonic() - started)
    print(json.dumps(data))


def _line(f: Figures) -> str:
    text = (
        f"{f.writer}: {f.kills} kills in {f.runs} runs, {f.checked} committed items checked, "
        f"{f.lost} lost, {f.corrupt} corrupt, resumed {f.resumed}/{f.resumed + f.not_resumed}, "
        f"{f.failed_runs} failed runs, {f.seconds} s"
    )
    if f.extra:
        text += f" {json.dumps(f.extra)}"
    for problem in f.problems[:5]:
        text += f"\n  {problem}"
    if len(f.problems) > 5:
        text += f"\n  ... {len(f.problems) - 5} more"
    return text


if __name__ == "__main__":
    main()
