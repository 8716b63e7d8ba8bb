"""The dense index: a chromadb collection holding precomputed, normalized embeddings.

Embeddings are always computed by :class:`~assistant.rag.embeddings.Embedder` and passed in,
and the collection is always opened with ``embedding_function=None`` given explicitly, so
chromadb never loads (or downloads) its default model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assistant.errors import ConfigError

COLLECTION = "documents"
_BATCH = 1000


class VectorStore:
    """Add, delete and query chunk vectors in chromadb (on disk, or a ``chroma run`` server)."""

    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        """Wrap a chromadb client; use :func:`open_store` to build one from settings."""
        self.client = client
        self.collection = client.get_or_create_collection(
            collection, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )

    def add(self, ids: list[str], vectors: NDArray[np.float32], paths: list[str]) -> None:
        """Store one vector per chunk id, tagged with the file it came from."""
        for start in range(0, len(ids), _BATCH):
            end = start + _BATCH
            self.collection.upsert(
                ids=ids[start:end],
                embeddings=vectors[start:end],
                metadatas=[{"path": p} for p in paths[start:end]],
            )

    def delete_path(self, path: str) -> None:
        """Remove every vector of ``path``."""
        self.collection.delete(where={"path": path})

    def count(self) -> int:
        """Number of stored vectors."""
        return int(self.collection.count())

    def query(self, vector: NDArray[np.float32], limit: int) -> list[tuple[str, float]]:
        """Return ``(chunk id, cosine similarity)`` best first."""
        if limit < 1 or self.count() == 0:
            return []
        result = self.collection.query(
            query_embeddings=[vector], n_results=limit, include=["distances"]
        )
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [(str(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]


def open_store(home: Path, server: str | None = None) -> VectorStore:
    """Open the vector store: on disk under ``home``, or on a chroma server ``host:port``.

    Raises:
        ConfigError: the server setting is malformed or the server does not answer.
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if not server:
        home.mkdir(parents=True, exist_ok=True)
        return VectorStore(chromadb.PersistentClient(path=str(home), settings=settings))
    host, _, port = server.removeprefix("http://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"rag_chroma_server must be HOST:PORT, got {server!r}")
    try:
        client = chromadb.HttpClient(host=host, port=int(port), settings=settings)
        client.heartbeat()
    except Exception as exc:  # chromadb raises several unrelated types for a dead server
        raise ConfigError(
            f"cannot reach the chroma server at {server} ({exc}); start it with "
            f"`chroma run --path DIR --host {host} --port {port}` or unset rag_chroma_server"
        ) from exc
    return VectorStore(client)
