"""A conversation with memory: the owner of every turn, in every mode.

``ChatSession.send`` commits the user's message (stores a "remember that ..." fact, sets the
title), builds the prompt with the conversation's memory strategy inside the context
(summarizing first if it would overflow), lets a *responder* (chat, documents, agent; see
:mod:`assistant.responders`) write the reply, and stores the reply as it streams
(:mod:`assistant.memory.reply`). The app, ``ask`` in each mode and ``history send`` all
go through it. Sending the same text again right after a turn that got no reply at all
answers the stored message instead of storing the question twice.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Generator, Iterator
from typing import Any

from assistant.backends.base import Backend, ChatMessage, GenerationOptions
from assistant.errors import ConfigError, ContextOverflowError
from assistant.memory.locks import conversation_lock
from assistant.memory.records import Conversation, Message, SearchHit, Summary
from assistant.memory.reply import (
    FLUSH_INTERVAL_S,
    FLUSH_TOKENS,
    FactStored,
    stream_reply,
    title_for,
)
from assistant.memory.store import MemoryStore
from assistant.memory.strategies import PromptPlan, StrategySpec, plan_prompt
from assistant.memory.summarize import summarize
from assistant.memory.versions import VersionError
from assistant.memory.writers import writer_id
from assistant.responders import MODES, ChatResponder, Responder, Turn
from assistant.thinking import backend_thinks

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
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_tokens: int = FLUSH_TOKENS,
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

    def set_mode(self, mode: str) -> None:
        """Answer this conversation's next turns in ``mode`` (chat, documents or agent)."""
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        self.store.update_conversation(self.conversation_id, mode=mode)

    def set_strategy(self, strategy: str) -> None:
        """Switch this conversation's memory strategy (takes effect on the next message)."""
        self.store.update_conversation(
            self.conversation_id, strategy=str(StrategySpec.parse(strategy))
        )

    def recall(self, query: str, limit: int = 5) -> list[SearchHit]:
        """Facts and past messages relevant to ``query`` (for the agent's memory tool)."""
        return self.store.recall(query, limit)

    # -- prompts -----------------------------------------------------------------------

    def prepare(
        self, user: Message, responder: Responder | None = None
    ) -> tuple[PromptPlan, Summary | None]:
        """Build the prompt ending with ``user``, compacting the history first if needed.

        The responder says what its mode adds: its system prompt, what the new message
        shows (documents add their sources) and tokens it spends outside the plan.
        """
        responder = responder or ChatResponder(self.backend)
        budget = self.budget - responder.overhead()
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
                system_prompt=responder.system_prompt(conversation.system_prompt),
                summary=summary.content if summary else None,
                history=prompt_history(kept),
                user={
                    "role": "user",
                    "content": responder.user_prompt(user.content, user.prompt_text),
                },
                count=self.backend.count_prompt_tokens,
                budget=budget,
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

    def send(self, text: str, responder: Responder | None = None) -> Generator[Any, None, None]:
        """Send ``text``; yield the responder's events while the reply is stored as it streams.

        One turn at a time per conversation (other threads and processes wait). A message
        too long for the context is refused before anything is stored.

        Raises:
            ContextOverflowError: the message alone does not fit the context.
            ConversationBusyError: another turn held the conversation too long.
            AssistantError: whatever the backend raises (the partial reply is kept).
        """
        responder = responder or ChatResponder(self.backend)
        with conversation_lock(self.store.path, self.conversation_id):
            yield from self._turn(text, responder)

    def regenerate(self, responder: Responder | None = None) -> Generator[Any, None, None]:
        """Answer the last user message again; the reply it had stays as an older version.

        Yields what :meth:`send` yields. See :mod:`assistant.memory.versions`.

        Raises:
            VersionError: there is no user message to answer again.
        """
        responder = responder or ChatResponder(self.backend)
        with conversation_lock(self.store.path, self.conversation_id):
            tail = self.store.last_messages(self.conversation_id, 2)
            if tail and tail[-1].role == "assistant":
                reply = tail.pop()
                if reply.content:
                    self.store.archive_from(self.conversation_id, reply.seq, "regenerate")
                else:  # an empty reply cut short: nothing to keep
                    self.store.delete_message(reply.id)
            if not tail or tail[-1].role != "user":
                raise VersionError("nothing to regenerate: no user message ends this conversation")
            yield from self._turn(tail[-1].content, responder)

    def edit(
        self, message_id: int, text: str, responder: Responder | None = None
    ) -> Generator[Any, None, None]:
        """Replace user message ``message_id`` by ``text`` and answer it: a new branch.

        The old message and everything after it stay as older versions (see
        :mod:`assistant.memory.versions`). Yields what :meth:`send` yields.

        Raises:
            VersionError: the message is not one of this conversation's active user
                messages, or ``text`` is empty.
            ContextOverflowError: ``text`` alone does not fit (nothing is changed).
        """
        responder = responder or ChatResponder(self.backend)
        with conversation_lock(self.store.path, self.conversation_id):
            message, active = self.store.any_message(message_id)
            if message.conversation_id != self.conversation_id:
                raise VersionError(
                    f"message {message_id} belongs to conversation {message.conversation_id}"
                )
            if message.role != "user":
                raise VersionError(f"message {message_id} is not a user message; edit those only")
            if not active:
                raise VersionError(
                    f"message {message_id} is an older version; switch to it first "
                    f"(`assistant history switch {message_id}`)"
                )
            if not text.strip():
                raise VersionError("the edited message is empty; nothing was changed")
            yield from self._turn(text, responder, replacing=message.seq)

    def _turn(self, text: str, responder: Responder, replacing: int | None = None) -> Iterator[Any]:
        """One turn: store ``text``, then stream and store the reply.

        ``replacing`` (an edit) is the position from which the active messages become an
        older version, in the transaction that stores the new message: a kill can leave the
        old branch or the new message, never neither.
        """
        self._refuse_if_too_long(text, responder)
        recalled = self.store.search_facts(text, self.recall_limit) if self.recall_limit else []
        failed = self.failed_turn(text) if replacing is None else None
        if failed is not None:  # sending it again: answer the stored message, once
            user, empty_reply = failed
            if empty_reply is not None:
                self.store.delete_message(empty_reply.id)
        else:
            fact = parse_remember(text)
            # The message, its fact and the title in one transaction: a kill between them
            # would leave a "remember that" message whose resend never stores the fact.
            with self.store.write():
                if replacing is not None:
                    self.store.archive_from(self.conversation_id, replacing, "edit")
                user = self.store.add_message(
                    self.conversation_id, "user", text, prompt_content=with_recalled(text, recalled)
                )
                if fact:
                    self.store.add_fact(fact, self.conversation_id)
                if not self.conversation.title:
                    self.store.update_conversation(self.conversation_id, title=title_for(text))
            if fact:
                yield FactStored(fact)
        plan, summary = self.prepare(user, responder)
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
                "mode": responder.mode,
            },
        )
        room = self.backend.context_length - plan.tokens - responder.overhead()
        turn = Turn(text, plan, self._options(), room)
        # A template that opens a <think> block in the prompt (R1 distills, QwQ): the
        # reply starts mid-thought. Backends that can render the prompt say so.
        probe = getattr(self.backend, "opens_thinking", None)
        opened = bool(probe(plan.messages)) if probe is not None else False
        # A model whose template has no <think> writes none: its text is all answer.
        thinks = backend_thinks(self.backend)
        events = responder.respond(turn)
        yield from stream_reply(
            self.store, reply, events, self._flush, opened=opened, thinks=thinks
        )

    def _refuse_if_too_long(self, text: str, responder: Responder) -> None:
        """Refuse, before storing it, a message that cannot fit even with no history."""
        system = responder.system_prompt(self.conversation.system_prompt)
        bare: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
        bare.append({"role": "user", "content": text})
        need = self.backend.count_prompt_tokens(bare)
        budget = self.budget - responder.overhead()
        if need > budget:
            context = self.backend.context_length
            raise ContextOverflowError(
                f"the message needs {need} prompt tokens but the context window holds "
                f"{context}, {context - budget} of them kept for the reply; shorten the "
                "message (or split it), or raise n_ctx. Nothing was stored."
            )

    def _options(self) -> GenerationOptions:
        return dataclasses.replace(self.options, conversation_id=self.conversation_id)

    @property
    def _flush(self) -> tuple[float, int]:
        return self.flush_interval_s, self.flush_tokens

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
