"""Ratings and preference pairs (chosen / rejected) from the user's own choices.

A pair comes from two versions of the same reply (siblings: same conversation, position
and preceding message) when the user

- rated them differently (up over unrated over down): source ``"ratings"``;
- or switched back to one of them (activated it) and rated neither above the other:
  source ``"versions"``;

or from an explicit :func:`add_pair` (``/compare``: the user picked the better of two
answers): source ``"compare"``. With ``marked_only`` (the default) only conversations the
user marked for training (``history mark``) give pairs. The prompt is the chat before the
reply on its own path, the conversation's system prompt first when it has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

from assistant.errors import AssistantError
from assistant.memory.facts import now
from assistant.memory.records import Message

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore

RATINGS = {1: "up", -1: "down", 0: "clear"}


@dataclass(frozen=True)
class PreferencePair:
    """One chosen / rejected pair for preference tuning (TRL's prompt/chosen/rejected)."""

    conversation_id: str
    prompt: list[dict[str, str]]  # chat messages (role, content) before the reply
    chosen: str
    rejected: str
    source: str  # "versions" | "ratings" | "compare"
    chosen_message_id: int | None
    rejected_message_id: int | None
    created_at: str


def rate(store: MemoryStore, message_id: int, rating: int) -> None:
    """Rate an assistant reply +1 (good) or -1 (bad); 0 clears the rating.

    Raises:
        AssistantError: the rating is not -1, 0 or 1, or the message is not a reply.
        MemoryNotFoundError: no message, active or archived, has that id.
    """
    if rating not in RATINGS:
        raise AssistantError(f"a rating is 1 (up), -1 (down) or 0 (clear), not {rating!r}")
    message, _active = store.any_message(message_id)
    if message.role != "assistant":
        raise AssistantError(
            f"message {message_id} is a {message.role} message; only assistant replies are rated"
        )
    with store.write():
        store.db.execute("DELETE FROM ratings WHERE message_id = ?", [message_id])
        if rating:
            store.db.table("ratings").insert(
                {
                    "message_id": message_id,
                    "conversation_id": message.conversation_id,
                    "rating": rating,
                    "created_at": now(),
                }
            )


def add_pair(
    store: MemoryStore,
    conversation_id: str,
    prompt: list[dict[str, str]],
    chosen: str,
    rejected: str,
    source: str = "compare",
    *,
    chosen_message_id: int | None = None,
    rejected_message_id: int | None = None,
) -> int:
    """Store an explicit pair (the user picked ``chosen`` over ``rejected``); return its id.

    Raises:
        AssistantError: the prompt is not a list of role/content messages, or a side is
            empty, or both sides are the same text.
        MemoryNotFoundError: no conversation has that id.
    """
    conversation = store.conversation(conversation_id)
    if not isinstance(prompt, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in prompt
    ):
        raise AssistantError("a pair's prompt is a list of {'role': ..., 'content': ...} messages")
    if not chosen.strip() or not rejected.strip():
        raise AssistantError("a pair needs a chosen and a rejected answer, neither empty")
    if chosen == rejected:
        raise AssistantError("the chosen and the rejected answers are the same text")
    with store.write():
        pk = (
            store.db.table("preference_pairs")
            .insert(
                {
                    "conversation_id": conversation.id,
                    "prompt_json": json.dumps(
                        [{"role": m["role"], "content": m["content"]} for m in prompt]
                    ),
                    "chosen": chosen,
                    "rejected": rejected,
                    "source": source,
                    "chosen_message_id": chosen_message_id,
                    "rejected_message_id": rejected_message_id,
                    "created_at": now(),
                }
            )
            .last_pk
        )
    return int(pk or 0)


def preference_pairs(store: MemoryStore, *, marked_only: bool = True) -> list[PreferencePair]:
    """Every pair the user's ratings, version choices and explicit picks give, oldest first."""
    pairs: list[PreferencePair] = []
    for conversation in store.conversations():
        if marked_only and not conversation.marked_for_training:
            continue
        pairs += _version_pairs(store, conversation.id, conversation.system_prompt)
        for row in store.db.query(
            "SELECT * FROM preference_pairs WHERE conversation_id = ? ORDER BY id",
            [conversation.id],
        ):
            pairs.append(
                PreferencePair(
                    conversation_id=row["conversation_id"],
                    prompt=json.loads(row["prompt_json"]),
                    chosen=row["chosen"],
                    rejected=row["rejected"],
                    source=row["source"],
                    chosen_message_id=row["chosen_message_id"],
                    rejected_message_id=row["rejected_message_id"],
                    created_at=row["created_at"],
                )
            )
    return sorted(pairs, key=lambda p: p.created_at)


def _version_pairs(
    store: MemoryStore, conversation_id: str, system_prompt: str | None
) -> list[PreferencePair]:
    """Pairs from the versions of each reply of one conversation."""
    active = store.messages(conversation_id)
    parent_of: dict[int, int | None] = {}
    by_id: dict[int, Message] = {}
    previous: int | None = None
    for m in active:
        parent_of[m.id], by_id[m.id], previous = previous, m, m.id
    for m, parent in store.archived_messages(conversation_id):
        parent_of[m.id], by_id[m.id] = parent, m
    groups: dict[tuple[int, int | None], list[Message]] = {}
    for m in by_id.values():
        if m.role == "assistant" and m.content.strip() and m.status == "complete":
            groups.setdefault((m.seq, parent_of[m.id]), []).append(m)
    rated = {
        row["message_id"]: (row["rating"], row["created_at"])
        for row in store.db.query(
            "SELECT * FROM ratings WHERE conversation_id = ?", [conversation_id]
        )
    }
    choices = {
        (row["seq"], row["parent_id"]): (row["message_id"], row["created_at"])
        for row in store.db.query(
            "SELECT * FROM version_choices WHERE conversation_id = ? ORDER BY id",
            [conversation_id],
        )
    }
    pairs = []
    for key, siblings in sorted(groups.items(), key=lambda item: item[0][0]):
        if len(siblings) < 2:
            continue
        chosen_id, chosen_at = choices.get(key, (None, ""))
        prompt = _prompt(key[1], by_id, parent_of, system_prompt)
        for a, b in combinations(sorted(siblings, key=lambda m: m.id), 2):
            (ra, at_a), (rb, at_b) = rated.get(a.id, (0, "")), rated.get(b.id, (0, ""))
            if ra != rb:
                win, lose = (a, b) if ra > rb else (b, a)
                source, stamp = "ratings", max(at_a, at_b)
            elif chosen_id in (a.id, b.id) and a.content != b.content:
                win, lose = (a, b) if chosen_id == a.id else (b, a)
                source, stamp = "versions", chosen_at
            else:
                continue
            if win.content == lose.content:
                continue
            pairs.append(
                PreferencePair(
                    conversation_id, prompt, win.content, lose.content, source, win.id, lose.id,
                    stamp,
                )
            )  # fmt: skip
    return pairs


def _prompt(
    parent: int | None,
    by_id: dict[int, Message],
    parent_of: dict[int, int | None],
    system_prompt: str | None,
) -> list[dict[str, str]]:
    """The chat on the path ending with message ``parent``, oldest first."""
    path: list[dict[str, str]] = []
    while parent is not None and parent in by_id:
        m = by_id[parent]
        if m.role in ("user", "assistant") and m.content:
            path.append({"role": m.role, "content": m.content})
        parent = parent_of.get(parent)
    if system_prompt:
        path.append({"role": "system", "content": system_prompt})
    return path[::-1]
