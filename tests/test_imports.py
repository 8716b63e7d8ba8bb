"""The core knows nothing of the screen: no ``assistant`` module imports ``textual``.

Each check runs in a fresh interpreter, so what other tests imported does not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Imports the modules named in argv[1] in order; prints which of argv[2]'s top-level
# packages ended up in sys.modules.
PROBE = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
watched = json.loads(sys.argv[2])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(watched))))
"""
HEAVY = ["sqlite_utils", "llama_cpp", "langchain_core", "chromadb", "torch", "ddgs"]


def assistant_modules() -> list[str]:
    """Every module of the ``assistant`` package, from its files (nothing imported here)."""
    names = []
    for path in sorted((ROOT / "assistant").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return [n for n in names if n != "assistant.__main__"]  # that one runs the CLI


def imported(modules: list[str], watched: list[str]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after importing ``modules``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(modules), json.dumps(watched)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_every_assistant_module_imports_without_textual() -> None:
    modules = assistant_modules()
    assert {"assistant.services", "assistant.cli.turns", "assistant.memory.session"} <= set(modules)
    assert imported(modules, ["textual"]) == []


def test_the_probe_sees_textual_when_it_is_imported() -> None:
    """The check above can fail: the app's own modules do load textual."""
    assert imported(["tui.app"], ["textual"]) == ["textual"]


def test_the_app_imports_nothing_heavy_before_it_starts() -> None:
    """The prompt takes keys at once: the model, the database and the document index are
    imported by workers, after the app is up."""
    assert imported(["tui.app"], HEAVY) == []


@pytest.mark.parametrize("module", ["assistant.services", "assistant.responders"])
def test_what_the_app_imports_first_imports_on_its_own(module: str) -> None:
    """Imported first, before any ``assistant.memory`` module (there was a cycle)."""
    assert imported([module], ["textual"]) == []
