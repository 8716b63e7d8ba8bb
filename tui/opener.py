"""The command that opens a cited source at its line (or a PDF in the system viewer)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel

    from assistant.rag.index import Hit


def open_command(hit: Hit, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """``$EDITOR +LINE FILE`` for text, the system viewer for PDFs; None if the file is gone.

    Example:
        >>> from assistant.rag.index import Hit
        >>> open_command(Hit("/etc/hostname", None, 3, 4, "", 1.0, "x"), {"EDITOR": "vim"})
        ['vim', '+3', '/etc/hostname']
    """
    env = os.environ if environ is None else environ
    path = Path(hit.source)
    if not path.exists():
        return None
    if path.suffix.lower() == ".pdf":
        viewer = "open" if sys.platform == "darwin" else "xdg-open"
        return [viewer, str(path)]
    editor = (env.get("VISUAL") or env.get("EDITOR") or "").split()
    if not editor:
        editor = [next((e for e in ("nano", "vim", "vi") if shutil.which(e)), "vi")]
    line = [f"+{hit.line_start}"] if hit.line_start else []
    return [*editor, *line, str(path)]


def open_source(app: App[Any], hit: Hit) -> tuple[str, SeverityLevel] | None:
    """Open ``hit`` in the editor or viewer with the app suspended; None if it was, else
    what to tell the user (the file is gone; a headless app cannot suspend)."""
    command = open_command(hit)
    if command is None:
        return f"cannot open {hit.source}: no such file", "error"
    import subprocess

    try:
        with app.suspend():
            subprocess.run(command, check=False)
    except Exception as exc:  # SuspendNotSupported (headless), a missing editor
        what = f"cannot open an editor here ({type(exc).__name__}); run: {' '.join(command)}"
        return what, "warning"
    return None
