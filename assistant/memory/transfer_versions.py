"""The versions part of a conversation export: earlier versions, ratings, choices, pairs.

Database ids are local to one file, so the export names a message by where it is: an
active one by its index in ``messages`` (``{"message": i}``), an archived one by its index
in ``versions.archived`` (``{"version": j}``). Exports without this part (older ones)
import as before.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore

_ROW_SKIP = {"id", "conversation_id", "summary_id", "writer"}
Ref = dict[str, int] | None


def export_versions(store: MemoryStore, conversation_id: str) -> dict[str, Any] | None:
    """Everything about the conversation's versions, or None when it has none of it."""
    db = store.db
    active = [m.id for m in store.messages(conversation_id)]
    archived = list(
        db.query(
            "SELECT * FROM message_versions WHERE conversation_id = ? ORDER BY id",
            [conversation_id],
        )
    )
    refs: dict[int, dict[str, int]] = {i: {"message": n} for n, i in enumerate(active)}
    refs.update({row["id"]: {"version": n} for n, row in enumerate(archived)})

    def ref(message_id: int | None) -> Ref:
        return refs.get(message_id) if message_id is not None else None

    def rows(table: str) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {table} WHERE conversation_id = ? ORDER BY rowid"
        return list(db.query(sql, [conversation_id]))

    part = {
        "archived": [
            {
                "row": {k: v for k, v in json.loads(row["row_json"]).items() if k not in _ROW_SKIP},
                "parent": ref(row["parent_id"]),
                "branch": row["branch"],
                "reason": row["reason"],
                "archived_at": row["archived_at"],
            }
            for row in archived
        ],
        "ratings": [
            {"ref": ref(r["message_id"]), "rating": r["rating"], "created_at": r["created_at"]}
            for r in rows("ratings")
            if r["message_id"] in refs
        ],
        "choices": [
            {
                "ref": ref(r["message_id"]),
                "parent": ref(r["parent_id"]),
                "created_at": r["created_at"],
            }
            for r in rows("version_choices")
            if r["message_id"] in refs
        ],
        "pairs": [
            {
                "prompt": json.loads(r["prompt_json"]),
                "chosen": r["chosen"],
                "rejected": r["rejected"],
                "source": r["source"],
                "chosen_ref": ref(r["chosen_message_id"]),
                "rejected_ref": ref(r["rejected_message_id"]),
                "created_at": r["created_at"],
            }
            for r in rows("preference_pairs")
        ],
    }
    return part if any(part.values()) else None


def import_versions(store: MemoryStore, conversation_id: str, part: Any, active: list[int]) -> None:
    """Write an export's versions part for a conversation whose active messages (in order)
    got the ids ``active``. Runs inside the import's transaction; a damaged part raises
    KeyError, TypeError, IndexError or ValueError (the import reports it)."""
    if part is None:
        return
    if not isinstance(part, dict):
        raise TypeError("the versions part is not an object")
    db = store.db
    archived = part.get("archived") or []
    first = store.next_message_id()
    new_ids = [first + n for n in range(len(archived))]
    branch_base = db.execute("SELECT coalesce(max(branch), 0) FROM message_versions").fetchone()[0]

    def resolve(ref: Any, before: int | None = None) -> int | None:
        """The id ``ref`` names; a parent (``before``: the archived row's index) must be an
        earlier archived row, so a damaged file cannot make a cycle of parents."""
        if ref is None:
            return None
        if not isinstance(ref, dict) or len(ref) != 1:
            raise TypeError(f"message reference {ref!r}")
        ((kind, index),) = ref.items()
        if not isinstance(index, int) or index < 0:
            raise IndexError(f"message reference {ref!r}")
        if kind == "version" and before is not None and index >= before:
            raise ValueError(f"version {before} names a parent that is not before it: {ref!r}")
        return {"message": active, "version": new_ids}[kind][index]

    for j, (new_id, item) in enumerate(zip(new_ids, archived, strict=True)):
        row = {**item["row"], "id": new_id, "conversation_id": conversation_id, "summary_id": None}
        db.table("message_versions").insert(
            {
                "id": new_id,
                "conversation_id": conversation_id,
                "seq": int(row["seq"]),
                "parent_id": resolve(item["parent"], before=j),
                "branch": branch_base + int(item["branch"]),
                "role": str(row["role"]),
                "content": str(row["content"]),
                "status": row.get("status") or "complete",
                "created_at": row.get("created_at"),
                "archived_at": item.get("archived_at"),
                "reason": item.get("reason"),
                "row_json": json.dumps(row),
            }
        )
    for r in part.get("ratings") or []:
        rating = int(r["rating"])
        if rating not in (1, -1):
            raise ValueError(f"a rating of {rating}")
        db.table("ratings").insert(
            {
                "message_id": resolve(r["ref"]),
                "conversation_id": conversation_id,
                "rating": rating,
                "created_at": r.get("created_at"),
            }
        )
    for c in part.get("choices") or []:
        message_id = resolve(c["ref"])
        seq = db.execute(
            "SELECT seq FROM messages WHERE id = ? UNION ALL "
            "SELECT seq FROM message_versions WHERE id = ?",
            [message_id, message_id],
        ).fetchone()[0]
        db.table("version_choices").insert(
            {
                "conversation_id": conversation_id,
                "seq": seq,
                "parent_id": resolve(c["parent"]),
                "message_id": message_id,
                "created_at": c.get("created_at"),
            }
        )
    for p in part.get("pairs") or []:
        db.table("preference_pairs").insert(
            {
                "conversation_id": conversation_id,
                "prompt_json": json.dumps(
                    [{"role": str(m["role"]), "content": str(m["content"])} for m in p["prompt"]]
                ),
                "chosen": str(p["chosen"]),
                "rejected": str(p["rejected"]),
                "source": str(p["source"]),
                "chosen_message_id": resolve(p.get("chosen_ref")),
                "rejected_message_id": resolve(p.get("rejected_ref")),
                "created_at": p.get("created_at"),
            }
        )
