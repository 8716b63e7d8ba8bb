"""The memory tool an agent can call: recall facts and past messages by meaning of words."""

from __future__ import annotations

from collections.abc import Callable

from assistant.memory.store import MemoryStore


def format_hits(store: MemoryStore, query: str, limit: int = 5) -> str:
    """What :func:`make_recall_tool`'s tool returns for ``query``: one line per hit."""
    hits = store.recall(query, limit)
    if not hits:
        return "nothing remembered about that"
    lines = []
    for hit in hits:
        where = (
            "fact" if hit.kind == "fact" else f"{hit.role} in conversation {hit.conversation_id}"
        )
        lines.append(f"- ({where}) {' '.join(hit.content.split())[:300]}")
    return "\n".join(lines)


def make_recall_tool(store: MemoryStore, limit: int = 5) -> Callable[[str], str]:
    """Build the agent's ``recall`` tool over ``store``."""

    def recall(query: str) -> str:
        """Search long-term memory (facts the user asked you to remember, and past
        conversations) for words in the query; returns the best matches, one a line."""
        return format_hits(store, query, limit)

    return recall
