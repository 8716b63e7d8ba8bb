"""The manifest each stage writes next to its output, and the checks every stage shares.

A stage's output directory holds ``manifest.json``: which stage made it, from what inputs
(base model, data hash, hyperparameters, chat template), with which library versions, and
its results. A stage refuses to write into a directory that holds something else, and
returns the existing result when asked to redo the same work (idempotence).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

MANIFEST = "manifest.json"
_PACKAGES = ("torch", "transformers", "peft", "accelerate", "gguf", "llama_cpp_python")


class TrainingError(AssistantError):
    """A training stage cannot run: bad input, a taken output directory, a failed gate."""


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a training result."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def digest(data: Any) -> str:
    """A short, stable hash of JSON-able ``data``."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(paths: list[Path]) -> str:
    """A short hash of the contents of ``paths``, in order."""
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def read_manifest(directory: Path, stage: str | None = None) -> dict[str, Any]:
    """Read ``directory/manifest.json``, checking it was written by ``stage``.

    Raises:
        TrainingError: no manifest, an unreadable one, or one from another stage.
    """
    path = directory / MANIFEST
    if not path.is_file():
        wanted = f"`assistant train {stage}`" if stage else "a training stage"
        raise TrainingError(f"{directory} has no {MANIFEST}; create it with {wanted} first")
    try:
        data = dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"{path} is unreadable ({exc}); delete the directory and rerun"
        ) from exc
    if stage and data.get("stage") != stage:
        raise TrainingError(
            f"{directory} holds the output of {data.get('stage')!r}, not {stage!r}; "
            f"pass the directory `assistant train {stage}` wrote"
        )
    return data


def write_manifest(directory: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Write ``data`` (plus creation time and versions) atomically as the manifest."""
    data = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), **data}
    data.setdefault("versions", versions())
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
    os.replace(tmp, directory / MANIFEST)
    return data


def existing_result(out: Path, stage: str, key: str) -> dict[str, Any] | None:
    """The manifest in ``out`` if it holds this very result; None if ``out`` is free.

    Raises:
        TrainingError: ``out`` holds something else (never overwritten).
    """
    if (out / MANIFEST).is_file():
        data = read_manifest(out)
        if data.get("stage") == stage and data.get("key") == key:
            return data
        raise TrainingError(
            f"{out} already holds a different {data.get('stage')} result; "
            "choose another --out or delete it"
        )
    return None


def require_free(out: Path, allowed: tuple[str, ...] = ()) -> None:
    """Refuse an output directory that holds anything but ``allowed`` names."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out} is a file; --out must be a directory")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in allowed)
        if others:
            raise TrainingError(
                f"{out} is not empty ({', '.join(others[:5])}); choose another --out or delete it"
            )
