"""Versions of a message: regenerate and edit keep every reply, one path is active.

``messages`` holds the active path, linear in ``seq`` (the memory strategies, summaries and
``prompt_start_seq`` rely on it). Replacing a message moves it, and everything after it,
whole into ``message_versions`` as one *branch* (a batch id), each row remembering the
message before it (``parent_id``). The *versions* of a message are its siblings: the rows,
active or archived, at the same position after the same parent. Activating an archived
version archives the active suffix from its position and moves its branch back, with
the ids it had, so ratings and preference pairs keep naming the same message.

Summaries covering a replaced position are dropped (the next prompt that needs one
summarizes again) and ``prompt_start_seq`` moves back to what the remaining summary covers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from assistant.errors import AssistantError
from assistant.memory.facts import MemoryNotFoundError, now
from assistant.memory.locks import conversation_lock
from assistant.memory.records import Message, message_from_row


class VersionError(AssistantError):
    """The message cannot be regenerated, edited or switched to as asked."""


@dataclass(frozen=True)
class Version:
    """One version of a position: ``number`` of ``total``, oldest first."""

    message: Message
    number: int
    total: int
    active: bool
    rating: int = 0


class VersionsMixin:
    """The versions half of :class:`~assistant.memory.store.MemoryStore`."""

    db: Database
    path: Path | None

    def write(self) -> AbstractContextManager[Database]:
        """A write transaction (provided by the store)."""
        raise NotImplementedError

    # -- ids ---------------------------------------------------------------------------

    def next_message_id(self) -> int:
        """The id a new message gets: never one an archived version still holds."""
        row = self.db.execute(
            "SELECT max(coalesce((SELECT max(id) FROM messages), 0),"
            " coalesce((SELECT max(id) FROM message_versions), 0))"
        ).fetchone()
        return int(row[0]) + 1

    # -- finding ---------------------------------------------------------------------

    def any_message(self, message_id: int) -> tuple[Message, bool]:
        """A message, active or archived, and whether it is on the active path.

        Raises:
            MemoryNotFoundError: no message, active or archived, has that id.
        """
        rows = list(self.db.query("SELECT * FROM messages WHERE id = ?", [message_id]))
        if rows:
            return message_from_row(rows[0]), True
        archived = self.db.execute(
            "SELECT row_json FROM message_versions WHERE id = ?", [message_id]
        ).fetchone()
        if archived is None:
            raise MemoryNotFoundError(
                f"no message has id {message_id}; `assistant history show CID` lists the ids"
            )
        return message_from_row(json.loads(archived[0])), False

    def _parent_of(self, message: Message, active: bool) -> int | None:
        """The id of the message before ``message`` on its path (None for the first)."""
        if not active:
            row = self.db.execute(
                "SELECT parent_id FROM message_versions WHERE id = ?", [message.id]
            ).fetchone()
            return row[0] if row else None
        return self._active_before(message.conversation_id, message.seq)

    def _active_before(self, conversation_id: str, seq: int) -> int | None:
        row = self.db.execute(
            "SELECT id FROM messages WHERE conversation_id = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT 1",
            [conversation_id, seq],
        ).fetchone()
        return row[0] if row else None

    def versions(self, message_id: int) -> list[Version]:
        """Every version of the position ``message_id`` holds (itself included), oldest first."""
        message, active = self.any_message(message_id)
        parent = self._parent_of(message, active)
        found: list[tuple[Message, bool]] = []
        current = list(
            self.db.query(
                "SELECT * FROM messages WHERE conversation_id = ? AND seq = ?",
                [message.conversation_id, message.seq],
            )
        )
        if current and self._active_before(message.conversation_id, message.seq) == parent:
            found.append((message_from_row(current[0]), True))
        for row in self.db.query(
            "SELECT row_json FROM message_versions WHERE conversation_id = ? AND seq = ? "
            "AND parent_id IS ?",
            [message.conversation_id, message.seq, parent],
        ):
            found.append((message_from_row(json.loads(row["row_json"])), False))
        found.sort(key=lambda item: (item[0].created_at, item[0].id))
        ratings = self.ratings_of(message.conversation_id)
        return [
            Version(m, i + 1, len(found), is_active, ratings.get(m.id, 0))
            for i, (m, is_active) in enumerate(found)
        ]

    def version_counts(self, conversation_id: str) -> dict[int, tuple[int, int]]:
        """For each active message with other versions: (its number, how many there are)."""
        counts: dict[int, tuple[int, int]] = {}
        seqs = {
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT seq FROM message_versions WHERE conversation_id = ?",
                [conversation_id],
            )
        }
        for seq in sorted(seqs):
            row = self.db.execute(
                "SELECT id FROM messages WHERE conversation_id = ? AND seq = ?",
                [conversation_id, seq],
            ).fetchone()
            if row is None:
                continue
            found = self.versions(row[0])
            if len(found) > 1:
                mine = next(v for v in found if v.active)
                counts[row[0]] = (mine.number, mine.total)
        return counts

    def ratings_of(self, conversation_id: str) -> dict[int, int]:
        """Message id -> rating (+1 or -1) for every rated message of a conversation."""
        return {
            row[0]: row[1]
            for row in self.db.execute(
                "SELECT message_id, rating FROM ratings WHERE conversation_id = ?",
                [conversation_id],
            )
        }

    # -- changing the active path ---------------------------------------------------

    def archive_from(self, conversation_id: str, seq: int, reason: str) -> int | None:
        """Move the active messages at ``seq`` and after into a new branch; return its id.

        The caller holds the conversation's turn lock. Returns None when nothing is there.
        """
        with self.write():
            rows = list(
                self.db.query(
                    "SELECT * FROM messages WHERE conversation_id = ? AND seq >= ? ORDER BY seq",
                    [conversation_id, seq],
                )
            )
            if not rows:
                return None
            branch = self.db.execute(
                "SELECT coalesce(max(branch), 0) + 1 FROM message_versions"
            ).fetchone()[0]
            parent = self._active_before(conversation_id, seq)
            stamp = now()
            for row in rows:
                self.db.table("message_versions").insert(
                    {
                        "id": row["id"],
                        "conversation_id": conversation_id,
                        "seq": row["seq"],
                        "parent_id": parent,
                        "branch": branch,
                        "role": row["role"],
                        "content": row["content"],
                        "status": row["status"],
                        "created_at": row["created_at"],
                        "archived_at": stamp,
                        "reason": reason,
                        "row_json": json.dumps(row),
                    }
                )
                parent = row["id"]
            self.db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND seq >= ?",
                [conversation_id, seq],
            )
            self._invalidate_from(conversation_id, seq)
        return int(branch)

    def _invalidate_from(self, conversation_id: str, seq: int) -> None:
        """Drop summaries that cover position ``seq``; move ``prompt_start_seq`` back."""
        self.db.execute(
            "DELETE FROM summaries WHERE conversation_id = ? AND through_seq >= ?",
            [conversation_id, seq],
        )
        start = self.db.execute(
            "SELECT prompt_start_seq FROM conversations WHERE id = ?", [conversation_id]
        ).fetchone()[0]
        if (start or 0) > seq:
            covered = self.db.execute(
                "SELECT max(through_seq) FROM summaries WHERE conversation_id = ?",
                [conversation_id],
            ).fetchone()[0]
            start = covered + 1 if covered is not None else 0
        self.db.execute(
            "UPDATE conversations SET prompt_start_seq = ?, updated_at = ? WHERE id = ?",
            [start or 0, now(), conversation_id],
        )

    def activate_version(self, message_id: int) -> Message:
        """Make an archived version (and the messages that followed it) the active path.

        Takes the conversation's turn lock, as a send does. Activating an assistant reply
        records the choice (a preference over its other versions).

        Raises:
            MemoryNotFoundError: no message has that id.
            ConversationBusyError: a reply of that conversation is still being written.
        """
        message, active = self.any_message(message_id)
        with conversation_lock(self.path, message.conversation_id, timeout_s=10):
            if not active:
                with self.write():
                    self._activate(message_id)
                    if message.role == "assistant":
                        self.db.table("version_choices").insert(
                            {
                                "conversation_id": message.conversation_id,
                                "seq": message.seq,
                                "parent_id": self._active_before(
                                    message.conversation_id, message.seq
                                ),
                                "message_id": message_id,
                                "created_at": now(),
                            }
                        )
        return self.any_message(message_id)[0]

    def _activate(self, message_id: int) -> None:
        message, active = self.any_message(message_id)
        if active:
            return
        parent = self._parent_of(message, False)
        if parent is not None:
            self._activate(parent)  # an older branch: bring its start back first
            if self.any_message(message_id)[1]:
                return
        branch = self.db.execute(
            "SELECT branch FROM message_versions WHERE id = ?", [message_id]
        ).fetchone()[0]
        self.archive_from(message.conversation_id, message.seq, "switch")
        columns = set(self.db.table("messages").columns_dict)
        restored = list(
            self.db.query(
                "SELECT id, row_json FROM message_versions WHERE branch = ? AND seq >= ? "
                "ORDER BY seq",
                [branch, message.seq],
            )
        )
        for row in restored:
            data = {k: v for k, v in json.loads(row["row_json"]).items() if k in columns}
            self.db.table("messages").insert(data)
            self.db.execute("DELETE FROM message_versions WHERE id = ?", [row["id"]])

    def archived_messages(self, conversation_id: str) -> Iterator[tuple[Message, int | None]]:
        """Every archived message of a conversation with its parent id."""
        for row in self.db.query(
            "SELECT parent_id, row_json FROM message_versions WHERE conversation_id = ? "
            "ORDER BY seq, id",
            [conversation_id],
        ):
            yield message_from_row(json.loads(row["row_json"])), row["parent_id"]

    def delete_versions(self, conversation_id: str) -> None:
        """Forget a conversation's archived versions, ratings, choices and pairs."""
        with self.write():
            for table in ("message_versions", "ratings", "version_choices", "preference_pairs"):
                self.db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", [conversation_id])
