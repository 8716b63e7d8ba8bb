"""The memory store: one object over an injected ``sqlite_utils.Database``.

Every write runs in a short transaction, so whatever was committed survives a crash. On
open, replies still marked "streaming" whose writer process is gone are marked
"interrupted".
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from assistant.errors import AssistantError
from assistant.memory.facts import FactsMixin, now
from assistant.memory.facts import MemoryNotFoundError as MemoryNotFoundError
from assistant.memory.migrations import migrations
from assistant.memory.records import (
    Conversation,
    Message,
    Summary,
    conversation_from_row,
    message_from_row,
)
from assistant.memory.versions import VersionsMixin
from assistant.memory.writers import writer_alive
from assistant.memory.writers import writer_id as writer_id
from assistant.paths import DataPaths

BUSY_TIMEOUT_MS = 10_000
_MESSAGE_FIELDS = {
    "content",
    "prompt_content",
    "status",
    "finish_reason",
    "steps_json",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "model",
    "adapter",
    "summary_id",
    "memory_json",
    "writer",
    "reasoning",
    "created_at",
    "updated_at",
}
_CONVERSATION_FIELDS = {
    "title",
    "strategy",
    "system_prompt",
    "model",
    "adapter",
    "marked_for_training",
    "prompt_start_seq",
    "mode",
    "updated_at",
}


class SerializedDatabase(Database):
    """A ``Database`` whose statements run one thread at a time.

    sqlite-utils' ``query()`` wraps every read in a ``SAVEPOINT``; on a connection shared
    with a worker thread, a read that ran inside another thread's transaction would
    release (commit) it halfway. Reads and writes therefore take the same re-entrant
    lock as ``MemoryStore.write()``.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.lock = threading.RLock()
        super().__init__(conn)

    def query(self, sql: str, params: Any = None) -> Generator[dict[Any, Any], None, None]:
        with self.lock:
            return super().query(sql, params)

    def execute(self, sql: str, parameters: Any = None) -> sqlite3.Cursor:
        with self.lock:
            return super().execute(sql, parameters)


def default_db_path(home: Path) -> Path:
    """The memory database inside the data directory ``home``."""
    return DataPaths(home).memory_db


class MemoryStore(FactsMixin, VersionsMixin):
    """Conversations, messages, summaries and facts in one SQLite database."""

    def __init__(self, db: Database) -> None:
        # One thread's statement or transaction at a time on the shared connection.
        self.db = db if isinstance(db, SerializedDatabase) else SerializedDatabase(db.conn)
        self._lock = self.db.lock
        # The database file, where there is one (turn locks live beside it).
        self.path: Path | None = None
        if not db.memory:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.enable_wal()
        migrations.apply(db)
        self.recover_interrupted()

    @classmethod
    def open(cls, path: Path) -> MemoryStore:
        """Open (creating if needed) the database file at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # The app streams replies in a worker thread: the connection is shared, and
        # sqlite3 is built serialized; write() below keeps transactions apart.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        store = cls(SerializedDatabase(conn))
        store.path = path
        return store

    @classmethod
    def in_memory(cls) -> MemoryStore:
        """A throwaway in-memory store that worker threads may use too (tests, demos)."""
        return cls(SerializedDatabase(sqlite3.connect(":memory:", check_same_thread=False)))

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """A write transaction (nested calls become savepoints).

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a second process waits for
        the busy timeout instead of failing when a read-then-write transaction upgrades.
        """
        conn = self.db.conn
        with self._lock:
            if conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def recover_interrupted(self) -> int:
        """Mark replies left "streaming" by a dead process as "interrupted"; return how many."""
        rows = self.db.execute(
            "SELECT id, writer FROM messages WHERE status = 'streaming'"
        ).fetchall()
        dead = [row[0] for row in rows if not writer_alive(row[1])]
        if dead:
            with self.write():
                for message_id in dead:
                    self.db.execute(
                        "UPDATE messages SET status = 'interrupted', writer = NULL WHERE id = ?",
                        [message_id],
                    )
        return len(dead)

    # -- conversations -----------------------------------------------------------------

    def create_conversation(
        self,
        *,
        strategy: str,
        system_prompt: str | None = None,
        model: str | None = None,
        adapter: str | None = None,
        title: str = "",
        conversation_id: str | None = None,
        created_at: str | None = None,
        mode: str = "chat",
    ) -> Conversation:
        """Create and return a new conversation."""
        stamp = created_at or now()
        row = {
            "id": conversation_id or uuid.uuid4().hex[:12],
            "title": title,
            "created_at": stamp,
            "updated_at": stamp,
            "strategy": strategy,
            "system_prompt": system_prompt,
            "model": model,
            "adapter": adapter,
            "marked_for_training": 0,
            "prompt_start_seq": 0,
            "mode": mode,
        }
        with self.write():
            if self.db.execute("SELECT 1 FROM conversations WHERE id = ?", [row["id"]]).fetchone():
                raise AssistantError(f"conversation {row['id']} already exists")
            self.db.table("conversations").insert(row)
        return conversation_from_row(row)

    def conversation(self, ref: str) -> Conversation:
        """Return the conversation whose id is ``ref`` or starts with it (unambiguously)."""
        rows = list(
            self.db.query(
                "SELECT * FROM conversations WHERE id = ? OR id LIKE ? ORDER BY id = ? DESC",
                [ref, ref.replace("%", "").replace("_", "") + "%", ref],
            )
        )
        if not rows or (len(rows) > 1 and rows[0]["id"] != ref):
            what = "no" if not rows else "more than one"
            raise MemoryNotFoundError(
                f"{what} conversation matches {ref!r}; run `assistant history list` to see ids"
            )
        return conversation_from_row(rows[0])

    def conversations(self, limit: int | None = None) -> list[Conversation]:
        """Conversations, most recently updated first."""
        sql = "SELECT * FROM conversations ORDER BY updated_at DESC, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [conversation_from_row(r) for r in self.db.query(sql)]

    def update_conversation(self, conversation_id: str, **fields: Any) -> Conversation:
        """Change some of a conversation's columns; ``updated_at`` is set to now."""
        unknown = set(fields) - _CONVERSATION_FIELDS
        if unknown:
            raise ValueError(f"unknown conversation fields: {', '.join(sorted(unknown))}")
        fields.setdefault("updated_at", now())
        with self.write():
            self.db.table("conversations").update(conversation_id, fields)
        return self.conversation(conversation_id)

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its messages, summaries and settings."""
        with self.write():
            for table in ("messages", "summaries", "conversation_settings"):
                self.db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", [conversation_id])
            self.delete_versions(conversation_id)
            self.db.execute("DELETE FROM conversations WHERE id = ?", [conversation_id])

    # -- messages ----------------------------------------------------------------------

    def add_message(self, conversation_id: str, role: str, content: str, **fields: Any) -> Message:
        """Append a message (committed before this returns) and return it."""
        steps = fields.pop("steps", None)
        memory = fields.pop("memory", None)
        if steps is not None:
            fields["steps_json"] = json.dumps(steps)
        if memory:
            fields["memory_json"] = json.dumps(memory)
        unknown = set(fields) - _MESSAGE_FIELDS
        if unknown:
            raise ValueError(f"unknown message fields: {', '.join(sorted(unknown))}")
        stamp = fields.pop("created_at", None) or now()
        with self.write():
            seq = self.db.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM messages WHERE conversation_id = ?",
                [conversation_id],
            ).fetchone()[0]
            row = {
                "id": self.next_message_id(),  # archived versions keep their ids
                "conversation_id": conversation_id,
                "seq": seq,
                "role": role,
                "content": content,
                "status": "complete",
                "created_at": stamp,
                "updated_at": fields.pop("updated_at", stamp),
                **fields,
            }
            message_id = self.db.table("messages").insert(row).last_pk
            self.db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?",
                [row["updated_at"], conversation_id],
            )
        return self.message(int(message_id or 0))

    def update_message(self, message_id: int, **fields: Any) -> None:
        """Change some of a message's columns (``steps``/``memory`` take Python values)."""
        if "steps" in fields:
            fields["steps_json"] = json.dumps(fields.pop("steps"))
        if "memory" in fields:
            fields["memory_json"] = json.dumps(fields.pop("memory"))
        unknown = set(fields) - _MESSAGE_FIELDS
        if unknown:
            raise ValueError(f"unknown message fields: {', '.join(sorted(unknown))}")
        fields.setdefault("updated_at", now())
        with self.write():
            self.db.table("messages").update(message_id, fields)

    def message(self, message_id: int) -> Message:
        """Return one message by id."""
        rows = list(self.db.query("SELECT * FROM messages WHERE id = ?", [message_id]))
        if not rows:
            raise MemoryNotFoundError(f"no message has id {message_id}")
        return message_from_row(rows[0])

    def messages(self, conversation_id: str, since_seq: int = 0) -> list[Message]:
        """A conversation's messages with ``seq >= since_seq``, in order."""
        return [
            message_from_row(r)
            for r in self.db.query(
                "SELECT * FROM messages WHERE conversation_id = ? AND seq >= ? ORDER BY seq",
                [conversation_id, since_seq],
            )
        ]

    def last_messages(self, conversation_id: str, count: int) -> list[Message]:
        """A conversation's last ``count`` messages, in order."""
        rows = self.db.query(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
            [conversation_id, count],
        )
        return [message_from_row(r) for r in reversed(list(rows))]

    def delete_message(self, message_id: int) -> None:
        """Delete one message."""
        with self.write():
            self.db.execute("DELETE FROM messages WHERE id = ?", [message_id])

    def clear_messages(self, conversation_id: str) -> None:
        """Delete every message, version, rating and summary of a conversation (it stays)."""
        with self.write():
            for table in ("message_versions", "ratings", "version_choices"):
                self.db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", [conversation_id])
            for table in ("messages", "summaries"):
                self.db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", [conversation_id])
            self.db.execute(
                "UPDATE conversations SET prompt_start_seq = 0 WHERE id = ?", [conversation_id]
            )

    # -- summaries ---------------------------------------------------------------------

    def add_summary(
        self, conversation_id: str, content: str, through_seq: int, **fields: Any
    ) -> Summary:
        """Store a new summary covering messages up to ``through_seq``."""
        row = {
            "conversation_id": conversation_id,
            "content": content,
            "through_seq": through_seq,
            "created_at": now(),
            **fields,
        }
        with self.write():
            summary_id = self.db.table("summaries").insert(row).last_pk
        return self.summary(int(summary_id or 0))

    def summary(self, summary_id: int) -> Summary:
        """Return one summary by id."""
        rows = list(self.db.query("SELECT * FROM summaries WHERE id = ?", [summary_id]))
        if not rows:
            raise MemoryNotFoundError(f"no summary has id {summary_id}")
        return Summary(**rows[0])

    def summaries(self, conversation_id: str | None = None) -> list[Summary]:
        """Summaries (of one conversation, or all), oldest first."""
        where, args = (
            ("WHERE conversation_id = ?", [conversation_id]) if conversation_id else ("", [])
        )
        sql = f"SELECT * FROM summaries {where} ORDER BY through_seq, id"
        return [Summary(**r) for r in self.db.query(sql, args)]

    def latest_summary(self, conversation_id: str) -> Summary | None:
        """The summary covering the most messages, if any."""
        found = self.summaries(conversation_id)
        return found[-1] if found else None

    def edit_summary(self, summary_id: int, content: str) -> Summary:
        """Replace a summary's text (the user corrects what the model wrote)."""
        self.summary(summary_id)
        with self.write():
            self.db.table("summaries").update(summary_id, {"content": content, "edited_at": now()})
        return self.summary(summary_id)
