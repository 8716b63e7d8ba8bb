"""A conversation with memory: what the CLI and the chat app both drive.

``ChatSession.send`` commits the user's message, builds the prompt with the conversation's
memory strategy (summarizing first if the prompt would overflow), streams the reply while
writing it to the store every ``flush_interval_s`` or ``flush_tokens``, and finalizes it. A
reply cut short (an error, the caller closing the stream, a cancelled generation) is kept
and marked "interrupted"; a killed process leaves it "streaming", which the next open of
the store turns into "interrupted". Sending the same text again right after a turn that got
no reply at all answers the stored message instead of storing the question twice.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Generator, Iterator
from typing import Any

from assistant.backends.base import Backend, ChatMessage, Done, Event, GenerationOptions, Token
from assistant.errors import ContextOverflowError
from assistant.memory.records import Conversation, Message, SearchHit, Summary
from assistant.memory.store import MemoryStore
from assistant.memory.strategies import PromptPlan, StrategySpec, plan_prompt
from assistant.memory.summarize import summarize
from assistant.memory.writers import writer_id

_REMEMBER = re.compile(
    r"^\s*(?:please\s+)?remember(?:\s+that)?[\s,:]+(?P<fact>.+?)\s*[.!]?\s*$",
    re.IGNORECASE | re.DOTALL,
)
DEFAULT_STRATEGY = "summary_buffer"


def parse_remember(text: str) -> str | None:
    """The fact in a "remember that ..." message, or None.

    Example:
        >>> parse_remember("Remember that my cat is called Tom.")
        'my cat is called Tom'
    """
    match = _REMEMBER.match(text)
    return match.group("fact") if match else None


def with_recalled(text: str, facts: list[SearchHit]) -> str | None:
    """The user's text as the prompt shows it, with recalled facts; None if there are none."""
    if not facts:
        return None
    notes = "\n".join(f"- {f.content}" for f in facts)
    return f"{text}\n\n(Facts you remember:\n{notes})"


def prompt_history(messages: list[Message]) -> list[ChatMessage]:
    """Stored messages as prompt messages (empty replies and other roles left out)."""
    return [
        {"role": m.role, "content": m.prompt_text}
        for m in messages
        if m.role in ("user", "assistant") and m.prompt_text
    ]


class ChatSession:
    """One conversation of the store, talking to one backend."""

    def __init__(
        self,
        store: MemoryStore,
        backend: Backend,
        conversation_id: str,
        *,
        options: GenerationOptions | None = None,
        reply_reserve: int | None = None,
        summary_max_tokens: int = 256,
        recall_limit: int = 3,
        adapter: str | None = None,
        flush_interval_s: float = 0.5,
        flush_tokens: int = 32,
    ) -> None:
        self.store = store
        self.backend = backend
        self.conversation_id = store.conversation(conversation_id).id
        self.options = options or GenerationOptions()
        self.reply_reserve = reply_reserve or self.options.max_tokens or 512
        self.summary_max_tokens = summary_max_tokens
        self.recall_limit = recall_limit
        self.adapter = adapter
        self.flush_interval_s = flush_interval_s
        self.flush_tokens = flush_tokens
        self.last_plan: PromptPlan | None = None
        # The stored messages the last prompt showed verbatim.
        self.last_window: list[Message] = []

    @classmethod
    def create(
        cls,
        store: MemoryStore,
        backend: Backend,
        *,
        strategy: str = DEFAULT_STRATEGY,
        system_prompt: str | None = None,
        title: str = "",
        adapter: str | None = None,
        **kwargs: Any,
    ) -> ChatSession:
        """Start a new conversation and return its session."""
        spec = StrategySpec.parse(strategy)
        conversation = store.create_conversation(
            strategy=str(spec),
            system_prompt=system_prompt,
            model=backend.model_name,
            adapter=adapter,
            title=title,
        )
        return cls(store, backend, conversation.id, adapter=adapter, **kwargs)

    @property
    def conversation(self) -> Conversation:
        """The conversation's current row (another process may have changed it)."""
        return self.store.conversation(self.conversation_id)

    @property
    def budget(self) -> int:
        """The most prompt tokens: the context minus the reply reserve."""
        return self.backend.context_length - self.reply_reserve

    def messages(self) -> list[Message]:
        """Every stored message of the conversation, in order."""
        return self.store.messages(self.conversation_id)

    def set_strategy(self, strategy: str) -> None:
        """Switch this conversation's memory strategy (takes effect on the next message)."""
        self.store.update_conversation(
            self.conversation_id, strategy=str(StrategySpec.parse(strategy))
        )

    def recall(self, query: str, limit: int = 5) -> list[SearchHit]:
        """Facts and past messages relevant to ``query`` (for the agent's memory tool)."""
        return self.store.recall(query, limit)

    # -- prompts -----------------------------------------------------------------------

    def prepare(self, user: Message) -> tuple[PromptPlan, Summary | None]:
        """Build the prompt ending with ``user``, compacting the history first if needed."""
        for _ in range(4):
            conversation = self.conversation
            spec = StrategySpec.parse(conversation.strategy)
            summary = self.store.latest_summary(self.conversation_id) if spec.uses_summary else None
            stored = [
                m
                for m in self.store.messages(self.conversation_id, conversation.prompt_start_seq)
                if m.seq < user.seq
            ]
            kept = [m for m in stored if m.role in ("user", "assistant") and m.prompt_text]
            plan = plan_prompt(
                spec,
                system_prompt=conversation.system_prompt,
                summary=summary.content if summary else None,
                history=prompt_history(kept),
                user={"role": "user", "content": user.prompt_text},
                count=self.backend.count_prompt_tokens,
                budget=self.budget,
            )
            self.last_window = kept[plan.drop :]
            if plan.drop == 0:
                return plan, summary
            self._compact(spec, summary, kept, plan.drop, user.seq)
            if not spec.uses_summary:  # nothing to fold: the plan stands as it is
                return plan, summary
        raise ContextOverflowError(
            "the summary and the message do not fit the context; shorten the message, edit "
            "the summary (`assistant memory summaries`) or raise n_ctx"
        )

    def _compact(
        self,
        spec: StrategySpec,
        summary: Summary | None,
        kept: list[Message],
        drop: int,
        user_seq: int,
    ) -> None:
        new_start = kept[drop].seq if drop < len(kept) else user_seq
        if spec.uses_summary:
            # The summary must leave room for the message and some history.
            limit = max(16, min(self.summary_max_tokens, self.budget // 4))
            text = summarize(
                self.backend,
                summary.content if summary else None,
                prompt_history(kept[:drop]),
                max_tokens=limit,
                conversation_id=self.conversation_id,
            )
            self.store.add_summary(
                self.conversation_id, text, new_start - 1, model=self.backend.model_name
            )
        self.store.update_conversation(self.conversation_id, prompt_start_seq=new_start)

    # -- sending -----------------------------------------------------------------------

    def send(self, text: str, *, steps: list[Any] | None = None) -> Generator[Event, None, None]:
        """Send ``text``; yield the backend's events while the reply is stored as it streams.

        Raises:
            ContextOverflowError: the message alone does not fit the context.
            AssistantError: whatever the backend raises (the partial reply is kept).
        """
        recalled = self.store.search_facts(text, self.recall_limit) if self.recall_limit else []
        failed = self.failed_turn(text)
        if failed is not None:  # sending it again: answer the stored message, once
            user, empty_reply = failed
            if empty_reply is not None:
                self.store.delete_message(empty_reply.id)
        else:
            user = self.store.add_message(
                self.conversation_id, "user", text, prompt_content=with_recalled(text, recalled)
            )
            fact = parse_remember(text)
            if fact:
                self.store.add_fact(fact, self.conversation_id)
            if not self.conversation.title:
                self.store.update_conversation(self.conversation_id, title=text.strip()[:60])
        plan, summary = self.prepare(user)
        self.last_plan = plan
        reply = self.store.add_message(
            self.conversation_id,
            "assistant",
            "",
            status="streaming",
            writer=writer_id(),
            model=self.backend.model_name,
            adapter=self.adapter,
            summary_id=summary.id if summary else None,
            memory={
                "summary_id": summary.id if summary else None,
                "facts": self._facts_in_prompt(recalled),
            },
        )
        yield from self._stream(plan, reply, steps)

    def failed_turn(self, text: str) -> tuple[Message, Message | None] | None:
        """The last turn if it asked ``text`` and got no reply at all (an error cut it short).

        Returns the user's message and the empty reply left by the error (None when the
        error came before the reply started, e.g. a message too long for the context).
        """
        tail = self.store.last_messages(self.conversation_id, 2)
        empty_reply = None
        if tail and tail[-1].role == "assistant":
            if tail[-1].content or tail[-1].status != "interrupted":
                return None
            empty_reply = tail.pop()
        if tail and tail[-1].role == "user" and tail[-1].content == text:
            return tail[-1], empty_reply
        return None

    def _facts_in_prompt(self, recalled: list[SearchHit]) -> list[dict[str, Any]]:
        """Facts recalled now, and those recalled into earlier turns still in the prompt."""
        seen: dict[int, dict[str, Any]] = {}
        for message in self.last_window:
            for fact in message.memory.get("facts", []):
                seen.setdefault(fact["id"], fact)
        for hit in recalled:
            seen.setdefault(hit.id, {"id": hit.id, "content": hit.content})
        return list(seen.values())

    def _stream(self, plan: PromptPlan, reply: Message, steps: list[Any] | None) -> Iterator[Event]:
        options = dataclasses.replace(self.options, conversation_id=self.conversation_id)
        parts: list[str] = []
        flushed_at, flushed_n = time.monotonic(), 0
        done: Done | None = None
        try:
            for event in self.backend.stream(plan.messages, options):
                if isinstance(event, Token):
                    parts.append(event.text)
                    due = time.monotonic() - flushed_at >= self.flush_interval_s
                    if due or len(parts) - flushed_n >= self.flush_tokens:
                        self.store.update_message(reply.id, content="".join(parts))
                        flushed_at, flushed_n = time.monotonic(), len(parts)
                else:
                    done = event
                yield event
        finally:
            fields: dict[str, Any] = {"content": "".join(parts), "writer": None}
            if steps is not None:
                fields["steps"] = steps
            if done is not None:
                fields.update(
                    status="interrupted" if done.finish_reason == "cancelled" else "complete",
                    finish_reason=done.finish_reason,
                    prompt_tokens=done.usage.prompt_tokens,
                    completion_tokens=done.usage.completion_tokens,
                    cached_tokens=done.usage.cached_tokens,
                )
            else:
                fields["status"] = "interrupted"
            self.store.update_message(reply.id, **fields)
