"""The memory database schema, one numbered migration at a time (never edit a shipped one)."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("assistant.memory")


@migrations()
def m001_initial(db: Database) -> None:
    """Conversations, messages, summaries and facts, with FTS5 over the text."""
    db.table("conversations").create(
        {
            "id": str,
            "title": str,
            "created_at": str,
            "updated_at": str,
            # "buffer", "window:K", "summary" or "summary_buffer:TOKENS".
            "strategy": str,
            "system_prompt": str,
            "model": str,
            "adapter": str,
            "marked_for_training": int,
            # Messages with a lower seq are no longer in the prompt verbatim.
            "prompt_start_seq": int,
        },
        pk="id",
        not_null={"created_at", "updated_at", "strategy"},
        defaults={"marked_for_training": 0, "prompt_start_seq": 0, "title": ""},
    )
    db.table("messages").create(
        {
            "id": int,
            "conversation_id": str,
            "seq": int,
            "role": str,
            "content": str,
            # What the prompt showed when it differs from content (recalled facts added).
            "prompt_content": str,
            # "streaming", "complete" or "interrupted".
            "status": str,
            "finish_reason": str,
            "steps_json": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "cached_tokens": int,
            "model": str,
            "adapter": str,
            "created_at": str,
            "updated_at": str,
            # The summary and the facts that were in this reply's prompt.
            "summary_id": int,
            "memory_json": str,
            # "pid:start-ticks" of the process streaming this row, to spot dead writers.
            "writer": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "seq", "role", "content", "status"},
        defaults={"content": "", "status": "complete"},
    )
    db.table("messages").create_index(["conversation_id", "seq"], unique=True)
    db.table("summaries").create(
        {
            "id": int,
            "conversation_id": str,
            "content": str,
            # The summary covers the conversation's messages with seq <= through_seq.
            "through_seq": int,
            "model": str,
            "created_at": str,
            "edited_at": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "content", "through_seq"},
    )
    db.table("summaries").create_index(["conversation_id", "through_seq"])
    db.table("facts").create(
        {
            "id": int,
            "content": str,
            "created_at": str,
            "conversation_id": str,
        },
        pk="id",
        not_null={"content", "created_at"},
    )
    for table in ("messages", "facts", "summaries"):
        db.table(table).enable_fts(["content"], create_triggers=True, tokenize="porter")


@migrations()
def m002_conversation_mode(db: Database) -> None:
    """Each conversation remembers its mode: chat, documents or agent."""
    db.table("conversations").add_column("mode", str, not_null_default="chat")


@migrations()
def m003_versions_and_ratings(db: Database) -> None:
    """Earlier versions of messages (regenerate, edit), ratings, choices, preference pairs.

    ``messages`` stays the active path; a replaced message moves whole into
    ``message_versions`` (its id kept, ``row_json`` the full row) with the id of the message
    before it (``parent_id``) and the batch (``branch``) it left with. Message ids are never
    reused, so ratings and pairs may name an archived message.
    """
    db.table("message_versions").create(
        {
            "id": int,
            "conversation_id": str,
            "seq": int,
            "parent_id": int,
            "branch": int,
            "role": str,
            "content": str,
            "status": str,
            "created_at": str,
            "archived_at": str,
            # "regenerate", "edit" or "switch": why it left the active path.
            "reason": str,
            "row_json": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "seq", "branch", "role", "row_json"},
    )
    db.table("message_versions").create_index(["conversation_id", "seq"])
    db.table("message_versions").create_index(["conversation_id", "branch"])
    db.table("ratings").create(
        {"message_id": int, "conversation_id": str, "rating": int, "created_at": str},
        pk="message_id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "rating"},
    )
    # The user made this version of a position the active one (a preference).
    db.table("version_choices").create(
        {
            "id": int,
            "conversation_id": str,
            "seq": int,
            "parent_id": int,
            "message_id": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "seq", "message_id"},
    )
    db.table("preference_pairs").create(
        {
            "id": int,
            "conversation_id": str,
            "prompt_json": str,
            "chosen": str,
            "rejected": str,
            # "compare" (picked side by side) or another explicit source.
            "source": str,
            "chosen_message_id": int,
            "rejected_message_id": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "prompt_json", "chosen", "rejected", "source"},
    )


@migrations()
def m004_conversation_settings(db: Database) -> None:
    """Each conversation may set its own sampling: temperature, top_p, top_k, seed,
    max_tokens (None: the configured default). See assistant/memory/conversation_settings.py."""
    db.table("conversation_settings").create(
        {
            "conversation_id": str,
            "temperature": float,
            "top_p": float,
            "top_k": int,
            "seed": int,
            "max_tokens": int,
            "updated_at": str,
        },
        pk="conversation_id",
        foreign_keys=[("conversation_id", "conversations", "id")],
    )


@migrations()
def m005_message_reasoning(db: Database) -> None:
    """A reasoning model's <think> text, kept apart from the reply's content (never in
    prompts or summaries). See assistant/thinking.py."""
    db.table("messages").add_column("reasoning", str)
