"""Long-term facts and full-text search (FTS5, bm25) over messages and facts."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlite_utils import Database

from assistant.errors import AssistantError
from assistant.memory.records import Fact, SearchHit
from assistant.memory.search import fts_query


class MemoryNotFoundError(AssistantError):
    """No conversation, fact or summary has that id."""


def now() -> str:
    """The current UTC time as an ISO 8601 string (microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class FactsMixin:
    """The facts and search half of :class:`~assistant.memory.store.MemoryStore`."""

    db: Database

    def write(self) -> AbstractContextManager[Database]:
        """A write transaction (provided by the store)."""
        raise NotImplementedError

    # -- facts -------------------------------------------------------------------------

    def add_fact(self, content: str, conversation_id: str | None = None) -> Fact:
        """Remember a long-term fact."""
        row = {"content": content.strip(), "created_at": now(), "conversation_id": conversation_id}
        with self.write():
            fact_id = self.db.table("facts").insert(row).last_pk
        return self.fact(int(fact_id or 0))

    def facts(self) -> list[Fact]:
        """Every fact, oldest first."""
        return [Fact(**r) for r in self.db.query("SELECT * FROM facts ORDER BY id")]

    def fact(self, fact_id: int) -> Fact:
        """Return one fact by id."""
        rows = list(self.db.query("SELECT * FROM facts WHERE id = ?", [fact_id]))
        if not rows:
            raise MemoryNotFoundError(f"no fact has id {fact_id}; run `assistant memory list`")
        return Fact(**rows[0])

    def edit_fact(self, fact_id: int, content: str) -> Fact:
        """Replace a fact's text."""
        self.fact(fact_id)
        with self.write():
            self.db.table("facts").update(fact_id, {"content": content.strip()})
        return self.fact(fact_id)

    def forget_fact(self, fact_id: int) -> Fact:
        """Delete a fact; return what it said."""
        fact = self.fact(fact_id)
        with self.write():
            self.db.execute("DELETE FROM facts WHERE id = ?", [fact_id])
        return fact

    # -- search ------------------------------------------------------------------------

    def search_messages(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Messages matching any term of ``query``, best (bm25) first."""
        match = fts_query(query)
        if match is None:
            return []
        sql = (
            "SELECT m.id, m.content, m.conversation_id, m.role, m.created_at,"
            " bm25(messages_fts) AS rank FROM messages_fts"
            " JOIN messages m ON m.id = messages_fts.rowid"
            " WHERE messages_fts MATCH ? ORDER BY rank, m.id LIMIT ?"
        )
        return [SearchHit(kind="message", **r) for r in self.db.query(sql, [match, limit])]

    def search_facts(self, query: str, limit: int = 5) -> list[SearchHit]:
        """Facts matching any term of ``query``, best (bm25) first."""
        match = fts_query(query)
        if match is None:
            return []
        sql = (
            "SELECT f.id, f.content, f.conversation_id, f.created_at,"
            " bm25(facts_fts) AS rank FROM facts_fts JOIN facts f ON f.id = facts_fts.rowid"
            " WHERE facts_fts MATCH ? ORDER BY rank, f.id LIMIT ?"
        )
        return [SearchHit(kind="fact", **r) for r in self.db.query(sql, [match, limit])]

    def recall(self, query: str, limit: int = 5) -> list[SearchHit]:
        """What the agent's memory tool returns: matching facts first, then past messages."""
        facts = self.search_facts(query, limit)
        return facts + self.search_messages(query, max(0, limit - len(facts)) or 1)
