"""The model registry: named GGUF models and LoRA adapters the assistant can load.

Kept as ``models.json`` in the data directory, rewritten atomically (temp file, fsync,
rename) under a file lock, so a kill -9 or a second process never leaves it half-written.
The bundled model is always listed and cannot be removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.bundled import BUNDLED_NAME, bundled_model_path
from assistant.chat_formats import check_chat_format
from assistant.chat_template import check_template
from assistant.errors import (
    ConfigError,
    InvalidModelError,
    ModelNotFoundError,
    UnsupportedArchitectureError,
)
from assistant.gguf_info import GGUFInfo, read_gguf_info

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def check_name(name: str) -> None:
    """Refuse a model name that could not be registered (before any work is done for it).

    Raises:
        ConfigError: it is not letters, digits, '.', '_' or '-' (80 at most).
    """
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (max 80)"
        )


PROBE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ModelEntry:
    """One registered model or adapter."""

    name: str
    path: Path
    kind: str = "model"  # "model" or "adapter"
    chat_format: str | None = None
    base: str | None = None  # for adapters: the base model's name
    added_at: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        data = asdict(self)
        data["path"] = str(self.path)
        return data


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not a file to read (None when it is a regular file).

    Example:
        >>> file_problem(Path("/"))
        '/ is a folder, not a file'
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"no file at {path}"
    except OSError:
        return None  # unreadable for another reason: opening it says which
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path} is a folder, not a file"
    kind = next((name for test, name in _SPECIAL if test(mode)), "a special file")
    return f"{path} is not a regular file ({kind})"


def default_name(path: Path) -> str:
    """Derive a registry name from a file name (``Qwen2.5.Q4_K_M.gguf`` -> ``qwen2.5.q4_k_m``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._").lower()
    return stem[:80] or "model"


class ModelRegistry:
    """Named models and adapters, stored in ``<home>/models.json``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.file = home / "models.json"

    # -- storage -------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.file.exists():
            return {}
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            return dict(data["models"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"the model registry {self.file} is unreadable ({exc}); fix or delete it"
            ) from exc

    def _write(self, models: dict[str, dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".models.", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"models": models}, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".models.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            models = self._read()
            yield models
            self._write(models)

    # -- queries -------------------------------------------------------------------------

    def _bundled(self) -> ModelEntry | None:
        try:
            return ModelEntry(BUNDLED_NAME, bundled_model_path(), builtin=True)
        except ModelNotFoundError:
            return None

    def list(self) -> list[ModelEntry]:
        """All entries: the bundled model first, then the registered ones by name."""
        entries = [e for e in [self._bundled()] if e]
        for name, raw in sorted(self._read().items()):
            entries.append(_entry(name, raw))
        return entries

    def get(self, name: str) -> ModelEntry:
        """Return the entry called ``name``.

        Raises:
            ModelNotFoundError: no such entry.
        """
        if name == BUNDLED_NAME:
            bundled = self._bundled()
            if bundled is None:
                bundled_model_path()  # raises the install hint
            assert bundled is not None
            return bundled
        raw = self._read().get(name)
        if raw is None:
            known = ", ".join(e.name for e in self.list()) or "none"
            raise ModelNotFoundError(
                f"no model named {name!r} (registered: {known}); "
                "see `assistant models list` or pass a path to a .gguf file"
            )
        return _entry(name, raw)

    def resolve(self, ref: str) -> ModelEntry:
        """Resolve a registry name or a file path to an entry (paths need not be registered)."""
        looks_like_path = os.sep in ref or ref.endswith(".gguf") or ref.startswith(("~", "."))
        if looks_like_path or (not self._has(ref) and Path(ref).expanduser().exists()):
            path = Path(ref).expanduser().resolve()
            _require_file(path)
            return ModelEntry(default_name(path), path)
        return self.get(ref)

    def _has(self, name: str) -> bool:
        return name == BUNDLED_NAME or name in self._read()

    # -- changes -------------------------------------------------------------------------

    def add(
        self,
        path: str | Path,
        name: str | None = None,
        chat_format: str | None = None,
        base: str | None = None,
        *,
        load_check: bool = False,
    ) -> tuple[ModelEntry, GGUFInfo]:
        """Register the GGUF at ``path`` after checking it.

        LoRA adapters (GGUF ``general.type == "adapter"``) are registered as kind
        ``adapter``; ``base`` names the model they apply to (default: the bundled model).
        ``load_check`` also loads a model with llama.cpp first (:func:`check_loads`), as
        ``assistant models add`` does.

        Raises:
            ModelNotFoundError, InvalidModelError: the file is missing or not a valid GGUF.
            UnsupportedArchitectureError: (load_check) llama.cpp cannot run the model.
            ChatFormatRequiredError: a model without a template and no ``chat_format``.
            InvalidModelError: its embedded template (used when no ``chat_format`` is given)
                does not compile or breaks a bound.
            ConfigError: the name is taken or malformed.
        """
        resolved = Path(path).expanduser().resolve()
        _require_file(resolved)
        info = read_gguf_info(resolved)
        name = name or default_name(resolved)
        check_name(name)
        kind = "adapter" if info.is_lora else "model"
        if kind == "model":
            check_chat_format(chat_format, has_template=info.has_chat_template, model=str(resolved))
            if chat_format is None and info.chat_template:
                check_template(info.chat_template, model=str(resolved))
            base = None
        else:
            base = base or BUNDLED_NAME
            self.get(base)
        if self._has(name):  # checked again under the lock; this only spares a load
            raise _taken(name)
        if load_check and kind == "model":
            check_loads(resolved)
        entry = ModelEntry(
            name=name,
            path=resolved,
            kind=kind,
            chat_format=chat_format,
            base=base,
            added_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._locked() as models:
            if name == BUNDLED_NAME or name in models:
                raise _taken(name)
            data = entry.as_dict()
            del data["name"], data["builtin"]
            models[name] = data
        return entry, info

    def add_embedding(self, path: Path, name: str, base: str) -> ModelEntry:
        """Register a sentence-transformers model directory (kind ``embedding``).

        ``base`` names the model it was adapted from (`assistant train embeddings`).

        Raises:
            ConfigError: the name is taken or malformed, or ``path`` is not a model folder.
        """
        check_name(name)
        resolved = path.expanduser().resolve()
        if not (resolved / "modules.json").is_file():
            raise ConfigError(f"no sentence-transformers model at {resolved}")
        entry = ModelEntry(
            name=name,
            path=resolved,
            kind="embedding",
            base=base,
            added_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._locked() as models:
            if name == BUNDLED_NAME or name in models:
                raise _taken(name)
            data = entry.as_dict()
            del data["name"], data["builtin"]
            models[name] = data
        return entry

    def remove(self, name: str) -> ModelEntry:
        """Unregister ``name`` (the file itself is left on disk).

        Raises:
            ModelNotFoundError: no such entry.
            ConfigError: the bundled model cannot be removed.
        """
        if name == BUNDLED_NAME:
            raise ConfigError(f"{BUNDLED_NAME} is the bundled default model and cannot be removed")
        with self._locked() as models:
            if name not in models:
                self.get(name)  # raises with the list of known names
            raw = models.pop(name)
        return _entry(name, raw)


def _require_file(path: Path) -> None:
    """Refuse a model path that is missing, a folder or a named pipe (reading one blocks)."""
    problem = file_problem(path)
    if problem:
        raise ModelNotFoundError(
            f"{problem}; pass the path of a .gguf file or a name from `assistant models list`"
        )


def _taken(name: str) -> ConfigError:
    return ConfigError(
        f"a model named {name!r} is already registered; choose another --name "
        f"or run `assistant models remove {name}` first"
    )


def _entry(name: str, raw: dict[str, Any]) -> ModelEntry:
    return ModelEntry(
        name=name,
        path=Path(raw["path"]),
        kind=raw.get("kind", "model"),
        chat_format=raw.get("chat_format"),
        base=raw.get("base"),
        added_at=raw.get("added_at"),
    )


def check_loads(path: Path, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Load the model at ``path`` with llama.cpp (weights only, no context), or say why not.

    The header reader catches truncation; only llama.cpp knows which architectures, keys
    and tensors it needs. The load runs in a child process because llama.cpp aborts the
    whole process on some corrupt files, and so that a load that never ends can be stopped.

    Raises:
        UnsupportedArchitectureError: llama.cpp does not know the architecture.
        InvalidModelError: llama.cpp refused or crashed on the file, or took too long.
    """
    code = "from assistant.registry import _load_in_child; _load_in_child()"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidModelError(
            f"llama.cpp did not finish loading {path} within {timeout_s:g} s; it is not added"
        ) from exc
    if done.returncode == 0:
        return
    reason = _load_error(done.stderr) or (
        f"it stopped with signal {-done.returncode}"
        if done.returncode < 0
        else f"exit status {done.returncode}"
    )
    error = UnsupportedArchitectureError if "architecture" in reason else InvalidModelError
    raise error(
        f"llama.cpp cannot load {path} ({reason}); it is not added. Check that the file is "
        "a complete model, or upgrade llama-cpp-python for a newer architecture"
    )


def _load_error(log: str) -> str | None:
    """The most specific error line of llama.cpp's log, without its function-name prefix."""
    lines = [line.strip() for line in log.splitlines() if "error" in line.lower()]
    if not lines:
        return None
    text = lines[0]
    marker = "error loading model:"
    if marker in text:
        text = text.split(marker, 1)[1]
    return text.strip().rstrip(".")[:300]


def _load_in_child() -> None:
    """In the child process: load argv[1] with llama.cpp, log to stderr, exit 0 if it loads."""
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def log(level: int, text: bytes, user_data: Any) -> None:
        sys.stderr.write(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(log, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0  # a check, not a run: keep GPUs out of it
    model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), params)
    if not model:
        sys.exit(3)
    llama_cpp.llama_model_free(model)
