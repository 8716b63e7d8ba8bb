"""Conversation memory in SQLite: the store, memory strategies and the chat session."""

from assistant.memory.records import Conversation, Fact, Message, SearchHit, Summary
from assistant.memory.session import ChatSession, parse_remember
from assistant.memory.store import MemoryNotFoundError, MemoryStore, default_db_path
from assistant.memory.strategies import PromptPlan, StrategySpec, plan_prompt

__all__ = [
    "ChatSession",
    "Conversation",
    "Fact",
    "MemoryNotFoundError",
    "MemoryStore",
    "Message",
    "PromptPlan",
    "SearchHit",
    "StrategySpec",
    "Summary",
    "default_db_path",
    "parse_remember",
    "plan_prompt",
]
