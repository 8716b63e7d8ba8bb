"""Local documents: ingest files, search them (keyword + dense) and answer with citations.

The Python API used by the CLI, the agent's document-search tool and the TUI::

    from assistant.rag import search
    for hit in search("how do I read a file line by line?", k=5):
        print(hit.location(), hit.score)
"""

from __future__ import annotations

from pathlib import Path

from assistant.config import Config, load_config
from assistant.rag.index import DocumentIndex, Hit, IngestReport, open_index

__all__ = ["DocumentIndex", "Hit", "IngestReport", "index_for", "search"]

_OPEN: dict[tuple[Path, str | None, str | None, str | None], DocumentIndex] = {}


def index_for(config: Config) -> DocumentIndex:
    """Return the document index of ``config`` (opened once per process and setting)."""
    key = (
        config.home / "documents",
        config.rag_embedding_model,
        config.rag_chroma_server,
        config.rag_reranker_model,
    )
    if key not in _OPEN:
        index = open_index(key[0], embedding_model=key[1], chroma_server=key[2])
        if config.rag_reranker_model:
            from assistant.rag.rerank import Reranker

            index.reranker = Reranker(config.rag_reranker_model)
        _OPEN[key] = index
    return _OPEN[key]


def search(query: str, k: int = 5, config: Config | None = None, mode: str = "hybrid") -> list[Hit]:
    """Return the ``k`` chunks of the user's documents that best match ``query``.

    Args:
        query: the question or keywords.
        k: how many hits to return.
        config: the configuration (default: :func:`~assistant.config.load_config`).
        mode: ``"hybrid"`` (shipped fusion), ``"dense"`` or ``"keyword"``.
    """
    return index_for(config or load_config()).search(query, k, mode)
