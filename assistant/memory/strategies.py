"""Memory strategies: pure functions that choose what of a conversation goes in the prompt.

Every strategy counts tokens with a supplied counter (the backend's ``count_prompt_tokens``)
and keeps the prompt within ``budget`` (the context minus a reserve for the reply). When a
prompt would not fit, the plan says how many leading history messages to drop: the caller
folds them into the running summary (summary strategies) and moves the conversation's start
past them, so the prompts that follow only append until the next compaction and the KV
cache prefix is reused.

- ``buffer``: the whole history; on overflow the oldest exchanges go, down to half the budget.
- ``window:K``: the last K exchanges (a user message and its reply).
- ``summary``: the running summary and the turns since; on overflow all turns are folded in.
- ``summary_buffer[:T]``: the summary plus the recent turns, which may hold T tokens (default
  half the budget); beyond that the oldest are folded in until they hold T/2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.backends.base import ChatMessage
from assistant.errors import ConfigError, ContextOverflowError

Counter = Callable[[Sequence[ChatMessage]], int]
STRATEGIES = ("buffer", "window", "summary", "summary_buffer")
# After a compaction the prompt should use at most this share of the budget, so that many
# turns can be appended before the next one.
LOW_WATER = 0.5
SUMMARY_HEADING = "Summary of the conversation so far:"


@dataclass(frozen=True)
class StrategySpec:
    """A strategy name with its parameter: ``window:6``, ``summary_buffer:1024``."""

    name: str
    k: int = 6
    buffer_tokens: int | None = None

    @classmethod
    def parse(cls, text: str) -> StrategySpec:
        """Parse ``name[:N]``; raise ConfigError naming the valid choices."""
        name, _, arg = text.strip().lower().replace("-", "_").replace("+", "_").partition(":")
        if name not in STRATEGIES:
            raise ConfigError(
                f"unknown memory strategy {text!r}; choose one of buffer, window:K, summary, "
                "summary_buffer[:TOKENS]"
            )
        if arg and (not arg.isdigit() or int(arg) < 1 or name in ("buffer", "summary")):
            raise ConfigError(
                f"bad memory strategy {text!r}: only window and summary_buffer "
                "take a positive number"
            )
        if name == "window":
            return cls(name, k=int(arg) if arg else 6)
        if name == "summary_buffer":
            return cls(name, buffer_tokens=int(arg) if arg else None)
        return cls(name)

    def __str__(self) -> str:
        if self.name == "window":
            return f"window:{self.k}"
        if self.name == "summary_buffer" and self.buffer_tokens:
            return f"summary_buffer:{self.buffer_tokens}"
        return self.name

    @property
    def uses_summary(self) -> bool:
        """Whether dropped turns are folded into a running summary."""
        return self.name in ("summary", "summary_buffer")


@dataclass(frozen=True)
class PromptPlan:
    """The prompt to send, and how many leading history messages left it."""

    messages: list[ChatMessage]
    drop: int
    tokens: int


def head_messages(system_prompt: str | None, summary: str | None) -> list[ChatMessage]:
    """The prompt's head: the system prompt and the running summary in one system message."""
    parts = [p for p in (system_prompt, f"{SUMMARY_HEADING}\n{summary}" if summary else None) if p]
    return [{"role": "system", "content": "\n\n".join(parts)}] if parts else []


def exchange_starts(history: Sequence[ChatMessage]) -> list[int]:
    """Indexes where an exchange starts (each user message), then ``len(history)``."""
    starts = [i for i, m in enumerate(history) if m["role"] == "user" or i == 0]
    return [*starts, len(history)]


def plan_prompt(
    spec: StrategySpec,
    *,
    system_prompt: str | None,
    summary: str | None,
    history: Sequence[ChatMessage],
    user: ChatMessage,
    count: Counter,
    budget: int,
) -> PromptPlan:
    """Choose the prompt for the next reply under ``spec``.

    Args:
        spec: the strategy.
        system_prompt: the conversation's system prompt, if any.
        summary: the running summary (ignored by strategies without one).
        history: the messages since the conversation's start, oldest first.
        user: the new user message.
        count: counts the tokens of a rendered prompt.
        budget: the most prompt tokens allowed (context minus the reply reserve).

    Returns:
        The plan. With ``drop > 0`` its messages already leave out ``history[:drop]``; a
        summary strategy must fold those into the summary and plan again.

    Raises:
        ContextOverflowError: even the head and the new message alone do not fit.
    """
    head = head_messages(system_prompt, summary if spec.uses_summary else None)
    starts = exchange_starts(history)

    def build(drop: int) -> list[ChatMessage]:
        return [*head, *history[drop:], user]

    def tokens(drop: int) -> int:
        return count(build(drop))

    floor = 0
    if spec.name == "window":
        floor = starts[max(0, len(starts) - 1 - spec.k)]
    full = tokens(floor)
    allowance = spec.buffer_tokens or budget // 2
    if full <= (min(budget, allowance) if spec.name == "summary_buffer" else budget):
        return PromptPlan(build(floor), floor, full)  # the common case: one count
    bare = tokens(len(history)) if history[floor:] else full
    if bare > budget:
        raise ContextOverflowError(
            f"the message needs {bare} prompt tokens but only {budget} fit with room for the "
            "reply; shorten it or raise n_ctx"
        )
    limit = budget
    if spec.name == "summary_buffer":
        limit = min(budget, bare + allowance)
    if full <= limit:
        return PromptPlan(build(floor), floor, full)
    if spec.name == "summary":
        return PromptPlan(build(len(history)), len(history), bare)
    if spec.name == "window":
        target = budget
    elif spec.name == "buffer":
        target = max(bare, int(budget * LOW_WATER))
    else:
        target = max(bare, min(int(budget * LOW_WATER), bare + (limit - bare) // 2))
    drop = _smallest_fitting([s for s in starts if s >= floor], tokens, target)
    return PromptPlan(build(drop), drop, tokens(drop))


def _smallest_fitting(candidates: list[int], tokens: Callable[[int], int], target: int) -> int:
    """The smallest candidate drop whose prompt fits ``target`` (tokens fall as drop grows)."""
    lo, hi = 0, len(candidates) - 1  # the last candidate (drop everything) always fits
    while lo < hi:
        mid = (lo + hi) // 2
        if tokens(candidates[mid]) <= target:
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo]


SUMMARY_INSTRUCTIONS = (
    "You summarize conversations. Write a short summary of the conversation below in the "
    "third person. Keep names, numbers, decisions and open questions. Write only the summary."
)


def summary_prompt(previous: str | None, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The prompt asking the model to fold ``messages`` into the ``previous`` summary."""
    transcript = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    earlier = f"Summary so far:\n{previous}\n\n" if previous else ""
    return [
        {"role": "system", "content": SUMMARY_INSTRUCTIONS},
        {"role": "user", "content": f"{earlier}Conversation:\n{transcript}"},
    ]
