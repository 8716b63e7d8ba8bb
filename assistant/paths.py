"""Where the assistant keeps its data: one function owns the data directory."""

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DataPaths:
    """Every file and folder the assistant keeps under its data directory."""

    home: Path

    @property
    def memory_db(self) -> Path:
        """Conversations, messages, summaries and facts."""
        return self.home / "memory.db"

    @property
    def documents(self) -> Path:
        """The document index (chromadb and the catalog)."""
        return self.home / "documents"

    @property
    def catalog(self) -> Path:
        """The document catalog: per-file status and keyword index."""
        return self.documents / "catalog.db"

    @property
    def web_cache(self) -> Path:
        """Cached web search results."""
        return self.home / "web_cache.db"

    @property
    def templates(self) -> Path:
        """Saved prompts / personas, one TOML file each (see assistant/templates.py)."""
        return self.home / "templates"
