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
        self.name = collection
        self.collection = client.get_or_create_collection(
            collection, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )

    @property
    def model(self) -> str | None:
        """The embedding model whose vectors this collection holds, as recorded by
        :meth:`record_model` (None: not recorded, as in collections made before)."""
        found = (self.collection.metadata or {}).get("model")
        return str(found) if found else None

    def record_model(self, name: str) -> None:
        """Record ``name`` as the model of this collection's vectors."""
        metadata = {k: v for k, v in (self.collection.metadata or {}).items() if ":" not in k}
        self.collection.modify(metadata={**metadata, "model": name})

    def dimension(self) -> int | None:
        """The length of the stored vectors (None when there are none)."""
        got = self.collection.get(limit=1, include=["embeddings"])
        vectors = got.get("embeddings")
        return len(vectors[0]) if vectors is not None and len(vectors) else None

    def recreate(self) -> None:
        """Empty the collection (it held another model's vectors), keeping its name."""
        self.client.delete_collection(self.name)
        self.collection = self.client.get_or_create_collection(
            self.name, embedding_function=None, metadata={"hnsw:space": "cosine"}
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

    def drop_other_collections(self, keep: set[str]) -> list[str]:
        """Delete this index's collections (``documents``, ``documents-NAME``) not named in
        ``keep``; return their names. Collections named otherwise are never touched."""
        dropped = []
        for found in self.client.list_collections():
            name = found if isinstance(found, str) else found.name
            ours = name == COLLECTION or name.startswith(f"{COLLECTION}-")
            if ours and name not in keep:
                self.client.delete_collection(name)
                dropped.append(name)
        return dropped

    def delete_path(self, path: str) -> None:
        """Remove every vector of ``path``."""
        self.collection.delete(where={"path": path})

    def count(self) -> int:
        """Number of stored vectors."""
        return int(self.collection.count())

    def ids(self) -> set[str]:
        """Every stored chunk id (read in pages, so a big collection is not one request)."""
        found: set[str] = set()
        offset = 0
        while True:
            page = self.collection.get(include=[], limit=_BATCH * 5, offset=offset)
            found.update(str(i) for i in page["ids"])
            if len(page["ids"]) < _BATCH * 5:
                return found
            offset += len(page["ids"])

    def delete(self, ids: list[str]) -> None:
        """Remove the vectors of ``ids``."""
        for start in range(0, len(ids), _BATCH):
            self.collection.delete(ids=ids[start : start + _BATCH])

    def neighbours(self, ids: list[str], limit: int = 8) -> dict[str, list[tuple[str, float, str]]]:
        """For each stored id, its nearest stored chunks: ``(id, similarity, path)`` best first."""
        out: dict[str, list[tuple[str, float, str]]] = {}
        for start in range(0, len(ids), _BATCH):
            got = self.collection.get(ids=ids[start : start + _BATCH], include=["embeddings"])
            if not len(got["ids"]):
                continue
            result = self.collection.query(
                query_embeddings=got["embeddings"],
                n_results=min(limit + 1, max(1, self.count())),
                include=["distances", "metadatas"],
            )
            for own, found, dist, meta in zip(
                got["ids"], result["ids"], result["distances"], result["metadatas"], strict=True
            ):
                out[str(own)] = [
                    (str(i), 1.0 - float(d), str((m or {}).get("path", "")))
                    for i, d, m in zip(found, dist, meta, strict=True)
                    if i != own
                ]
        return out

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


def open_store(home: Path, server: str | None = None, collection: str = COLLECTION) -> VectorStore:
    """Open the vector store: on disk under ``home``, or on a chroma server ``host:port``.

    Raises:
        ConfigError: the server setting is malformed or the server does not answer.
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if not server:
        home.mkdir(parents=True, exist_ok=True)
        return VectorStore(chromadb.PersistentClient(path=str(home), settings=settings), collection)
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
    return VectorStore(client, collection)
