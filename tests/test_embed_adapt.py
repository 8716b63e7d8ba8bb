"""Adapting the embedding model to the documents: mined pairs, a real (short) training run,
registration, re-embedding into a new collection, the held-out guard, and kill -9 safety.

The corpus is the project's own READMEs plus the RAG fixture documents (about 40 chunks),
ingested once with the real MiniLM into a real chromadb and copied for each test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.errors import ConfigError
from assistant.rag import adapt
from assistant.rag.adaptation import adapt_index, mine, resume
from assistant.rag.embeddings import (
    BLEND_FILE,
    DEFAULT_MODEL,
    Embedder,
    resolve_model_path,
    write_blend,
)
from assistant.rag.index import open_index
from assistant.rag.reembed import ACTIVE, PENDING, Embeddings, active, reembed
from assistant.rag.vectors import open_store
from assistant.registry import ModelRegistry
from tests.fixtures_rag.build import DOCS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = [str(ROOT / "README.md"), str(ROOT / "training" / "README.md"), str(DOCS)]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the small real corpus, built once (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("adapt") / "documents"
    report = open_index(folder).ingest(CORPUS)
    assert report.chunks >= adapt.MIN_CHUNKS
    return folder


def _copy(ingested: Path, home: Path) -> Path:
    target = home / "documents"
    shutil.copytree(ingested, target)
    return target


def _worse_model(path: Path) -> Path:
    """The bundled MiniLM with noise added to every weight: a model known to rank worse."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_path(None)), device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * parameter.std().clamp(min=1e-3) * 1.5)
    model.save(str(path))
    return path


def test_pairs_are_mined_from_headings_sentences_and_titles(ingested: Path) -> None:
    index = open_index(ingested)
    rows = {
        r["id"]: r
        for r in index.catalog.db.execute_returning_dicts("SELECT * FROM chunks")
    }  # fmt: skip
    mined = mine(index)
    pairs = mined.train + mined.held_out
    assert {p.kind for p in pairs} == {"heading", "sentence", "title"}
    for pair in pairs:
        row = rows[pair.chunk_id]
        assert row["path"] == pair.path
        if pair.kind == "heading":
            assert pair.anchor == row["heading"].split(" > ")[-1]
            assert pair.positive == row["text"]
        elif pair.kind == "sentence":
            assert pair.anchor in row["text"] and pair.anchor not in pair.positive
        if pair.negative:  # the nearest chunk of another file, from the current index
            negative_paths = {r["path"] for r in rows.values() if pair.negative.endswith(r["text"])}
            assert negative_paths and pair.path not in negative_paths
    assert sum(bool(p.negative) for p in pairs) > len(pairs) // 2
    # Held out by file: nothing the model trains on comes from a held-out file.
    held_files = {p.path for p in mined.held_out}
    assert held_files and not held_files & {p.path for p in mined.train}
    assert len(mined.held_out) >= 5


def test_sentences_split_on_sentence_ends_and_blank_lines() -> None:
    text = "First one here. Second, with v1.2 inside! Third?\n\nA new paragraph"
    assert adapt.sentences(text) == [
        "First one here.", "Second, with v1.2 inside!", "Third?", "A new paragraph",
    ]  # fmt: skip


def _pairs(root: str, sizes: dict[str, int]) -> list[adapt.Pair]:
    return [
        adapt.Pair(f"a{i}", f"p{i}", "sentence", f"{root}/{name}", f"{name}-{i}")
        for name, size in sizes.items()
        for i in range(size)
    ]


def test_held_out_files_are_the_same_wherever_the_folder_is_and_never_waste_pairs() -> None:
    sizes = {f"f{i}.md": 3 for i in range(40)} | {"big.md": 200}
    one = adapt.split(_pairs("/tmp/a", sizes), limit=30)
    other = adapt.split(_pairs("/home/me/docs/copy", sizes), limit=30)
    files = {p.path.rsplit("/", 1)[1] for p in one.held_out}
    assert files == {p.path.rsplit("/", 1)[1] for p in other.held_out}
    # The big file would overflow the held-out limit: it trains whole, and nothing is lost.
    assert "big.md" not in files and 10 <= len(one.held_out) <= 30
    assert len(one.train) + len(one.held_out) == 320
    # Only files too big to hold out: chunks are held out instead, none lost.
    big = adapt.split(_pairs("/tmp/a", {"a.md": 200, "b.md": 200}), limit=30)
    assert big.held_out and len(big.train) + len(big.held_out) == 400
    assert {p.path for p in big.train} == {"/tmp/a/a.md", "/tmp/a/b.md"}


def test_judge_refuses_only_a_drop_beyond_noise() -> None:
    same = adapt.judge([0.5, 1.0, 0.0, 0.63] * 10, [0.5, 1.0, 0.0, 0.63] * 10)
    assert not same.worse and same.low == same.high == 0.0
    noisy = adapt.judge([1.0, 0.0] * 20, [0.0, 1.0] * 19 + [0.0, 0.5])  # one pair a bit lower
    assert noisy.adapted < noisy.current and not noisy.worse and noisy.low < 0 < noisy.high
    dropped = adapt.judge([1.0, 0.63] * 20, [0.5, 0.43] * 20)
    assert dropped.worse and dropped.high < 0 and round(dropped.adapted, 2) == 0.47


def test_training_changes_the_weights_registers_the_model_and_switches_after_reembed(
    ingested: Path, home: Path
) -> None:
    documents = _copy(ingested, home)
    before = open_index(documents)
    chunk_count = before.catalog.chunk_count()
    seen: list[tuple[int, int]] = []
    report = adapt_index(
        documents, home, name="mine", seconds=120, max_steps=3, batch_size=4, force=True,
        progress=False, reembed_progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert report.steps == 3 and report.switched
    assert 0.0 <= report.current_score <= 1.0 and 0.0 <= report.adapted_score <= 1.0
    # Weights changed: the adapted model encodes differently from the bundled one.
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(str(resolve_model_path(None)), device="cpu")
    tuned = SentenceTransformer(report.path, device="cpu")
    changed = [
        name
        for (name, a), (_, b) in zip(base.named_parameters(), tuned.named_parameters(), strict=True)
        if not (a == b).all()
    ]
    assert changed
    # Registered like an adapter: a named model of kind "embedding" in the data dir.
    entry = ModelRegistry(home).get("mine")
    assert entry.kind == "embedding" and entry.path == Path(report.path).resolve()
    assert entry.path.parent == home / "embeddings"
    # Re-embedded into a new collection with progress, then switched by the pointer.
    assert seen and seen[-1] == (chunk_count, chunk_count)
    assert active(documents) == Embeddings("documents-mine", str(entry.path), "mine")
    assert not (documents / PENDING).exists()
    after = open_index(documents)
    assert after.store.name == "documents-mine" and after.store.count() == chunk_count
    assert after.embedder.path == entry.path
    # Saved as a blend with the base model: both models' vectors, joined (384 + 384).
    blend = json.loads((entry.path / BLEND_FILE).read_text())
    assert blend == {"with": DEFAULT_MODEL, "weight": adapt.DEFAULT_BLEND}
    assert after.embedder.partner is not None and after.store.dimension() == 768
    assert after.search("how do I descale the kettle", k=3)
    # The collection served before is kept (a running app may still read it).
    assert open_store(documents / "chroma", None, "documents").count() == chunk_count


def test_a_blend_scores_with_both_models_in_its_weights_share(tmp_path: Path) -> None:
    """A blend's dot product is w * its own cosine + (1 - w) * the other model's."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    own = _worse_model(tmp_path / "own")  # a model that ranks unlike the bundled one
    write_blend(own, resolve_model_path(None), 0.3)
    texts = ["how do I descale the kettle", "Descaling: boil vinegar and water.", "Tyres: 100 psi"]
    blended = Embedder(str(own)).encode(texts)
    assert blended.shape == (3, 768)
    assert np.allclose(np.linalg.norm(blended, axis=1), 1.0, atol=1e-5)
    a = SentenceTransformer(str(own), device="cpu").encode(texts, normalize_embeddings=True)
    b = Embedder().encode(texts)
    expected = 0.3 * (a @ a.T) + 0.7 * (b @ b.T)
    assert np.allclose(blended @ blended.T, expected, atol=1e-5)
    assert not np.allclose(a @ a.T, b @ b.T, atol=1e-2)  # the two parts really differ


@pytest.mark.parametrize(
    "content, says",
    [
        ('{"with": "all-minilm-l6-v2", "weight": 1.5}', "a weight between 0 and 1"),
        ('{"weight": 0.5}', "is unreadable"),
        ("not json", "is unreadable"),
        ('{"with": "/nowhere/model", "weight": 0.5}', "no longer a model folder; put it back"),
    ],
)
def test_a_bad_blend_file_is_named_with_the_fix(tmp_path: Path, content: str, says: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(resolve_model_path(None), folder)
    (folder / BLEND_FILE).write_text(content)
    embedder = Embedder(str(folder))  # read on first use: an index serving it still opens
    with pytest.raises(ConfigError, match=says) as caught:
        embedder.encode(["descale the kettle"])
    assert BLEND_FILE in str(caught.value)


def test_blend_1_saves_the_adapted_model_alone(ingested: Path, home: Path) -> None:
    documents = _copy(ingested, home)
    report = adapt_index(
        documents, home, name="alone", seconds=60, max_steps=2, batch_size=4, force=True,
        progress=False, blend=1.0,
    )  # fmt: skip
    assert not (Path(report.path) / BLEND_FILE).exists()
    served = open_index(documents)
    assert served.embedder.partner is None and served.store.dimension() == 384


def test_interpolation_keeps_the_asked_share_of_the_tuned_weights() -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    path = str(resolve_model_path(None))
    base = SentenceTransformer(path, device="cpu")
    tuned = SentenceTransformer(path, device="cpu")
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(1.0)
    adapt._interpolate(tuned, base, 0.25)
    for (name, a), (_, b) in zip(base.named_parameters(), tuned.named_parameters(), strict=True):
        assert torch.allclose(b, a + 0.25, atol=1e-5), name


def test_the_switch_follows_the_held_out_score(ingested: Path, home: Path, tmp_path: Path) -> None:
    documents = _copy(ingested, home)
    worse = _worse_model(tmp_path / "worse")
    lines: list[str] = []
    refused = adapt_index(
        documents, home, name="noisy", candidate=worse, progress=False, say=lines.append
    )
    assert not refused.switched and refused.adapted_score < refused.current_score
    assert refused.difference_ci95[1] < 0  # worse beyond noise
    assert f"{refused.adapted_score:.4f}" in refused.reason
    assert f"{refused.current_score:.4f}" in refused.reason
    assert any("current" in line and "adapted" in line for line in lines)  # both printed
    assert not (documents / ACTIVE).exists() and not (documents / PENDING).exists()
    assert open_index(documents).store.name == "documents"
    # Served by the worse model (forced), the bundled one is better and is switched to.
    reembed(documents, open_index(documents).catalog, Embeddings("documents-w", str(worse), "w"))
    accepted = adapt_index(
        documents, home, name="plain", candidate=resolve_model_path(None), progress=False
    )
    assert accepted.switched and accepted.adapted_score > accepted.current_score
    assert active(documents).collection == "documents-plain"


def test_revert_serves_the_unadapted_model_again(ingested: Path, home: Path) -> None:
    documents = _copy(ingested, home)
    count = open_index(documents).catalog.chunk_count()
    reembed(documents, open_index(documents).catalog, Embeddings("documents-x", str(
        resolve_model_path(None)), "x"))  # fmt: skip
    assert open_index(documents).store.name == "documents-x"
    result = CliRunner().invoke(cli, ["train", "embeddings", "--revert", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["switched"] and report["reused"] == count  # its vectors were kept
    assert active(documents) == Embeddings()
    index = open_index(documents)
    assert index.store.name == "documents" and index.store.count() == count
    assert index.search("how do I descale the kettle", k=3)


def test_revert_works_when_the_served_blends_partner_is_gone(
    ingested: Path, home: Path, tmp_path: Path
) -> None:
    documents = _copy(ingested, home)
    model = tmp_path / "blended"
    shutil.copytree(resolve_model_path(None), model)
    write_blend(model, resolve_model_path(None), 0.5)
    reembed(documents, open_index(documents).catalog, Embeddings("documents-b", str(model), "b"))
    assert open_index(documents).store.dimension() == 768
    (model / BLEND_FILE).write_text('{"with": "/moved/away", "weight": 0.5}')
    failed = CliRunner().invoke(cli, ["search", "kettle"])
    assert failed.exit_code != 0 and "--revert" in failed.output
    result = CliRunner().invoke(cli, ["train", "embeddings", "--revert", "--json"])
    assert result.exit_code == 0, result.output
    assert active(documents) == Embeddings()
    assert open_index(documents).search("how do I descale the kettle", k=3)


_CHILD = """
import sys, time
from pathlib import Path
from assistant.rag.index import open_index
from assistant.rag.reembed import Embeddings, reembed
home, model = Path(sys.argv[1]), sys.argv[2]
def progress(done, total):
    print(f"progress {done} {total}", flush=True)
    time.sleep(0.3)  # give the parent time to kill mid-way, on fast machines too
reembed(home, open_index(home).catalog, Embeddings("documents-new", model, "new"),
        batch=2, progress=progress)
print("switched", flush=True)
"""


def test_kill_9_during_reembed_leaves_the_old_index_serving(ingested: Path, home: Path) -> None:
    documents = _copy(ingested, home)
    total = open_index(documents).catalog.chunk_count()
    model = str(resolve_model_path(None))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(documents), model],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    deadline = time.monotonic() + 240
    done = 0
    while done < 6 and time.monotonic() < deadline:
        line = child.stdout.readline()
        assert line.startswith("progress"), line
        done = int(line.split()[1])
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL and done >= 6
    # Nothing switched: the old collection and model serve every chunk.
    assert not (documents / ACTIVE).exists() and (documents / PENDING).exists()
    index = open_index(documents)
    assert index.store.name == "documents" and index.store.count() == total
    assert index.search("how do I descale the kettle", k=3)
    partial = open_store(documents / "chroma", None, "documents-new").count()
    assert 6 <= partial < total
    # A second adaptation is refused until the interrupted one is finished.
    with pytest.raises(Exception, match="--resume"):
        adapt_index(documents, home, name="other", progress=False)
    report = resume(documents)
    assert report.switched and report.reused == partial and report.embedded == total - partial
    assert open_index(documents).store.name == "documents-new"
    assert open_index(documents).store.count() == total


def test_cli_refuses_an_index_with_too_few_chunks(home: Path) -> None:
    open_index(home / "documents")
    result = CliRunner().invoke(cli, ["train", "embeddings", "--json"])
    assert result.exit_code == 1
    assert "only 0 chunks are indexed; ingest more documents first" in result.output
    result = CliRunner().invoke(cli, ["train", "embeddings", "--resume"])
    assert result.exit_code == 2 and "no re-embedding to resume" in result.output


def test_a_bad_name_is_refused_before_anything_is_mined_or_trained(
    ingested: Path, home: Path
) -> None:
    _copy(ingested, home)
    for name in ("../escape", "has space", "-dash-first"):
        result = CliRunner().invoke(cli, ["train", "embeddings", "--name", name])
        assert result.exit_code == 2, result.output
        assert "invalid model name" in result.output and "mined" not in result.output
    assert not (home / "embeddings").exists() and not (home.parent / "escape").exists()


def test_cli_train_embeddings_reports_both_scores_as_json(ingested: Path, home: Path) -> None:
    _copy(ingested, home)
    args = ["train", "embeddings", "--json", "--name", "cli", "--max-steps", "1"]
    result = CliRunner().invoke(cli, [*args, "--batch-size", "4", "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)  # nothing else on the output, no progress bars
    assert report["name"] == "cli" and report["steps"] == 1
    assert {"current_score", "adapted_score", "switched", "pairs"} <= set(report)
    low, high = report["difference_ci95"]
    assert low <= high and report["switched"] == (high >= 0)


def test_dropping_old_collections_touches_only_this_indexs_own(tmp_path: Path) -> None:
    from assistant.rag.vectors import open_store

    home = tmp_path / "chroma"
    for name in ("documents", "documents-old", "documents-new", "someone-elses", "notes"):
        open_store(home, None, name)
    store = open_store(home, None, "documents-new")
    dropped = store.drop_other_collections({"documents-new", "documents"})
    assert dropped == ["documents-old"]
    left = {c if isinstance(c, str) else c.name for c in store.client.list_collections()}
    assert left == {"documents", "documents-new", "someone-elses", "notes"}
