"""What the app remembers between runs that is not a setting: the theme picked in the
command palette ("Change theme"), in ``$ASSISTANT_HOME/app-state.json``.

A missing, unreadable or hand-broken file is the same as none: the app starts with its
default theme and writes a good file the next time the theme changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE_NAME = "app-state.json"


def state_path(home: Path) -> Path:
    """Where the app's remembered state lives."""
    return home / FILE_NAME


def load_state(home: Path) -> dict[str, Any]:
    """The remembered state (empty when there is none or it cannot be read)."""
    try:
        data = json.loads(state_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_state(home: Path, **changes: Any) -> None:
    """Remember ``changes`` (atomically: a crash leaves the old file or the new one)."""
    data = {**load_state(home), **changes}
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".app-state-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, state_path(home))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
