"""Where the assistant keeps its data: one function owns the data directory."""

import os
from pathlib import Path


def data_dir() -> Path:
    """Return the data directory, honouring ``ASSISTANT_HOME``.

    Falls back to ``$XDG_DATA_HOME/assistant`` and then ``~/.local/share/assistant``.
    The directory is not created here; writers create it when they first write.
    """
    home = os.environ.get("ASSISTANT_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "assistant"
