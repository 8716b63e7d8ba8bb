"""Shared fixtures: an isolated data directory, the real bundled model, crafted GGUF files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.bundled import bundled_model_path


@pytest.fixture(scope="session", autouse=True)
def training_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One dequantized copy of the bundled model for the whole run (built by the first user)."""
    path = tmp_path_factory.mktemp("training-bases")
    os.environ["ASSISTANT_TRAINING_CACHE"] = str(path)
    yield path
    os.environ.pop("ASSISTANT_TRAINING_CACHE", None)


# ASSISTANT_N_THREADS is kept so the whole suite can be run at another thread count (the
# tests must pass at 1 and 2 threads: greedy words may differ, behaviour may not).
_KEPT = ("ASSISTANT_HOME", "ASSISTANT_TRAINING_CACHE", "ASSISTANT_N_THREADS")
TEST_THREADS = int(os.environ.get("ASSISTANT_N_THREADS", "1"))


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data directory."""
    path = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(path))
    for key in list(os.environ):
        if key.startswith("ASSISTANT_") and key not in _KEPT:
            monkeypatch.delenv(key)
    return path


@pytest.fixture(scope="session")
def smol_path() -> Path:
    """The real bundled SmolLM2-135M-Instruct Q4_1 GGUF."""
    return bundled_model_path()


@pytest.fixture(scope="session")
def smol(smol_path: Path) -> Iterator[LlamaCppBackend]:
    """One loaded real model shared by the tests that only generate (greedy by default)."""
    backend = LlamaCppBackend(
        smol_path,
        name="smollm2-135m",
        n_ctx=2048,
        n_threads=TEST_THREADS,
        n_threads_batch=2,
        defaults=SamplingDefaults(temperature=0.0, max_tokens=64, seed=1),
    )
    backend.load()
    yield backend
    backend.close()


def write_gguf(path: Path, arch: str = "llama", template: str | None = None) -> Path:
    """Write a tiny, valid GGUF file with one tensor (not a runnable model)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny-test")
    writer.add_context_length(128)
    if template is not None:
        writer.add_chat_template(template)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    """A tiny GGUF with an unknown architecture and no chat template."""
    return write_gguf(tmp_path / "tiny.gguf", arch="notarealarch")


@pytest.fixture(scope="session")
def smol_without_template(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled model with its chat template removed."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    out = tmp_path_factory.mktemp("notemplate") / "smol-no-template.gguf"
    reader = gguf.GGUFReader(str(smol_path), "r")
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(str(out), arch=arch, endianess=reader.endianess)
    copy_with_new_metadata(
        reader,
        writer,
        new_metadata={},
        remove_metadata=["tokenizer.chat_template"],
    )
    del MetadataDetails
    return out


@pytest.fixture(scope="session")
def zoo(smol_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny random-weight GGUF per model family (``tests/zoo.py``), built once a session."""
    from tests.zoo import build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo"), smol_path)
