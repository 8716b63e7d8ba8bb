"""One search over chats, documents and remembered facts: a single ranked list.

Each source ranks its own hits (bm25 over stored messages and over facts, the document
index's hybrid search over chunks); the lists are merged by reciprocal-rank fusion
(:func:`assistant.rag.fusion.rrf`, equal weights), since their scores are on different
scales. Every hit says what it is (``chat``, ``document``, ``fact``) and where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.rag import fusion

if TYPE_CHECKING:
    from assistant.config import Config
    from assistant.memory.store import MemoryStore
    from assistant.rag.index import Hit
    from assistant.services import Services

KINDS = ("chat", "document", "fact")
# Hits taken from each source before fusing: deeper than k, so one source's 10th hit can
# still outrank another's 11th.
DEPTH = 20


@dataclass(frozen=True)
class Found:
    """One hit of :func:`search_all`."""

    kind: str  # "chat", "document" or "fact"
    text: str
    score: float  # the fused score (higher is better)
    where: str  # provenance for people: "conversation C, message 12", "file:3-9", "fact 4"
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


def _chat(hit: Any) -> Found:
    where = f"conversation {hit.conversation_id}, message {hit.id}"
    prov = {"conversation_id": hit.conversation_id, "message_id": hit.id, "role": hit.role}
    return Found("chat", hit.content, 0.0, where, {**prov, "created_at": hit.created_at})


def _fact(hit: Any) -> Found:
    prov = {"fact_id": hit.id, "conversation_id": hit.conversation_id}
    return Found("fact", hit.content, 0.0, f"fact {hit.id}", prov)


def _document(hit: Hit) -> Found:
    prov = {
        "path": hit.source,
        "page": hit.page,
        "line_start": hit.line_start,
        "line_end": hit.line_end,
        "heading": hit.heading,
    }
    return Found("document", hit.text, 0.0, hit.location(), prov)


def search_all(
    query: str,
    *,
    store: MemoryStore | None,
    documents: Callable[[str, int], list[Hit]] | None,
    k: int = 10,
    kinds: tuple[str, ...] = KINDS,
) -> list[Found]:
    """The ``k`` best hits for ``query`` over the sources given (None: not searched)."""
    lists: dict[str, list[Found]] = {}
    if store is not None and "chat" in kinds:
        lists["chat"] = [_chat(h) for h in store.search_messages(query, DEPTH)]
    if store is not None and "fact" in kinds:
        lists["fact"] = [_fact(h) for h in store.search_facts(query, DEPTH)]
    if documents is not None and "document" in kinds:
        lists["document"] = [_document(h) for h in documents(query, DEPTH)]
    by_key: dict[str, Found] = {}
    rankings = []
    for kind, found in lists.items():
        ranking = []
        for n, item in enumerate(found):
            key = f"{kind}:{n}:{item.where}"
            by_key[key] = item
            ranking.append((key, float(len(found) - n)))
        rankings.append((ranking, 1.0))
    fused = fusion.rrf(rankings)
    return [
        Found(by_key[key].kind, by_key[key].text, round(score, 6), by_key[key].where,
              by_key[key].provenance)
        for key, score in fused[:k]
    ]  # fmt: skip


def search_everything(services: Services, query: str, k: int = 10) -> list[Found]:
    """:func:`search_all` over what ``services`` holds; nothing is created that is absent."""
    store = services.store if services.paths.memory_db.exists() else None
    documents = None
    if services.has_documents():

        def documents(q: str, depth: int) -> list[Hit]:
            return services.search_documents(q, depth)

    return search_all(query, store=store, documents=documents, k=k)


def format_found(found: list[Found]) -> list[str]:
    """Two lines a hit: ``n. [kind] where  score`` and a one-line snippet."""
    lines = []
    for n, item in enumerate(found, 1):
        lines.append(f"{n}. [{item.kind}] {item.where}  score {item.score:.4f}")
        snippet = " ".join(item.text.split())
        lines.append(f"   {snippet[:200]}{'…' if len(snippet) > 200 else ''}")
    return lines


def print_all(config: Config, query: str, k: int, as_json: bool) -> None:
    """What ``assistant search --all`` prints."""
    import json

    import click

    from assistant.rag.discover import printable
    from assistant.services import Services

    found = search_everything(Services(config), query, k)
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in found]))
        return
    if not found:
        click.echo("no results")
    for line in format_found(found):
        click.echo(printable(line))
