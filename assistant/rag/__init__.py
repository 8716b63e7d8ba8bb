"""Local documents: ingest files, search them (keyword + dense) and answer with citations.

The Python API used by the CLI, the agent's document-search tool and the TUI::

    from assistant.config import load_config
    from assistant.rag import index_for

    index = index_for(load_config())  # open once, keep it
    for hit in index.search("how do I read a file line by line?", k=5):
        print(hit.location(), hit.score)

Front ends hold one index in :class:`~assistant.services.Services`; nothing here caches.
"""

from __future__ import annotations

from assistant.config import Config
from assistant.paths import DataPaths
from assistant.rag.index import DocumentIndex, Hit, IngestReport, open_index

__all__ = ["DocumentIndex", "Hit", "IngestReport", "index_for"]


def index_for(config: Config) -> DocumentIndex:
    """Open the document index of ``config`` (each call opens a new one: keep it)."""
    index = open_index(
        DataPaths(config.home).documents,
        embedding_model=config.rag_embedding_model,
        chroma_server=config.rag_chroma_server,
    )
    if config.rag_reranker_model:
        from assistant.rag.rerank import Reranker

        index.reranker = Reranker(config.rag_reranker_model)
    return index
