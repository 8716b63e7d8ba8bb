"""LangChain interop: stored messages as langchain-core messages, a conversation as a history."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from assistant.chat_model import from_chat_message, to_chat_message
from assistant.memory.records import Message
from assistant.memory.store import MemoryStore


def to_langchain(message: Message) -> BaseMessage:
    """A stored message as the matching langchain-core message (its id kept as ``id``)."""
    converted = from_chat_message({"role": message.role, "content": message.content})
    converted.id = str(message.id)
    converted.response_metadata = (
        {"status": message.status, "model": message.model} if message.role == "assistant" else {}
    )
    return converted


class SQLiteChatMessageHistory(BaseChatMessageHistory):
    """A stored conversation as a LangChain chat message history.

    Example:
        >>> history = SQLiteChatMessageHistory(store, conversation_id)
        >>> history.add_user_message("hi")
        >>> [m.content for m in history.messages]
        ['hi']
    """

    def __init__(self, store: MemoryStore, conversation_id: str) -> None:
        self.store = store
        self.conversation_id = store.conversation(conversation_id).id

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The conversation's messages, oldest first."""
        return [to_langchain(m) for m in self.store.messages(self.conversation_id)]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages in one transaction."""
        with self.store.write():
            for message in messages:
                wire = to_chat_message(message)
                self.store.add_message(self.conversation_id, wire["role"], wire["content"])

    def clear(self) -> None:
        """Delete the conversation's messages and summaries (the conversation stays)."""
        self.store.clear_messages(self.conversation_id)
