"""Memory strategies: exact prompts on scripted conversations (1 token a word, 4 per message)."""

from __future__ import annotations

import pytest

from assistant.backends.base import ChatMessage
from assistant.backends.scripted import ScriptedBackend
from assistant.errors import ConfigError, ContextOverflowError
from assistant.memory.strategies import (
    SUMMARY_HEADING,
    StrategySpec,
    exchange_starts,
    head_messages,
    plan_prompt,
    summary_prompt,
)

COUNT = ScriptedBackend().count_prompt_tokens  # words + 4 per message: each one-word message is 5


def u(text: str) -> ChatMessage:
    return {"role": "user", "content": text}


def a(text: str) -> ChatMessage:
    return {"role": "assistant", "content": text}


def sys_(text: str) -> ChatMessage:
    return {"role": "system", "content": text}


def exchanges(n: int) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for i in range(1, n + 1):
        out += [u(f"q{i}"), a(f"a{i}")]
    return out


def plan(spec: str, history: list[ChatMessage], budget: int, summary: str | None = None):
    return plan_prompt(
        StrategySpec.parse(spec),
        system_prompt="sys",
        summary=summary,
        history=history,
        user=u("new"),
        count=COUNT,
        budget=budget,
    )


CASES = [
    # (strategy, exchanges, budget, summary, expected prompt, expected drop)
    ("buffer", 2, 100, None, [sys_("sys"), *exchanges(2), u("new")], 0),
    # 6 exchanges: 5 + 60 + 5 = 70 > 60, so the oldest go until at most 30 tokens remain.
    ("buffer", 6, 60, None, [sys_("sys"), u("q5"), a("a5"), u("q6"), a("a6"), u("new")], 8),
    ("buffer", 2, 100, "ignored", [sys_("sys"), *exchanges(2), u("new")], 0),
    ("window:2", 1, 100, None, [sys_("sys"), *exchanges(1), u("new")], 0),
    ("window:2", 4, 100, None, [sys_("sys"), u("q3"), a("a3"), u("q4"), a("a4"), u("new")], 4),
    ("window:1", 4, 100, None, [sys_("sys"), u("q4"), a("a4"), u("new")], 6),
    # window:3 would need 40 tokens; only 30 fit, so it narrows to what fits.
    ("window:3", 4, 30, None, [sys_("sys"), u("q3"), a("a3"), u("q4"), a("a4"), u("new")], 4),
    ("window:3", 4, 29, None, [sys_("sys"), u("q4"), a("a4"), u("new")], 6),
    (
        "summary",
        2,
        100,
        "they met",
        [sys_(f"sys\n\n{SUMMARY_HEADING}\nthey met"), *exchanges(2), u("new")],
        0,
    ),
    # Overflow: every turn is folded into the summary.
    ("summary", 6, 60, "s", [sys_(f"sys\n\n{SUMMARY_HEADING}\ns"), u("new")], 12),
    ("summary_buffer", 6, 1000, None, [sys_("sys"), *exchanges(6), u("new")], 0),
    # 20 tokens of turns allowed: 60 is too many; fold until at most 10 remain.
    ("summary_buffer:20", 6, 1000, None, [sys_("sys"), u("q6"), a("a6"), u("new")], 10),
    (
        "summary_buffer:20",
        2,
        1000,
        "old",
        [sys_(f"sys\n\n{SUMMARY_HEADING}\nold"), *exchanges(2), u("new")],
        0,
    ),
]


@pytest.mark.parametrize(("spec", "n", "budget", "summary", "expected", "drop"), CASES)
def test_strategy_builds_exact_prompt(
    spec: str,
    n: int,
    budget: int,
    summary: str | None,
    expected: list[ChatMessage],
    drop: int,
) -> None:
    result = plan(spec, exchanges(n), budget, summary)
    assert result.messages == expected
    assert result.drop == drop
    assert result.tokens == COUNT(expected) <= budget


def test_window_memory_keeps_last_k() -> None:
    for k in range(1, 6):
        result = plan(f"window:{k}", exchanges(8), 10_000)
        assert result.messages[1:-1] == exchanges(8)[-2 * k :]


def test_too_long_message_raises_context_overflow() -> None:
    with pytest.raises(ContextOverflowError, match="shorten it"):
        plan_prompt(
            StrategySpec.parse("buffer"),
            system_prompt=None,
            summary=None,
            history=[],
            user=u("word " * 50),
            count=COUNT,
            budget=20,
        )


def test_buffer_prompts_only_append_between_compactions() -> None:
    """Simulate a conversation: each prompt extends the last unless a compaction happened."""
    history: list[ChatMessage] = []
    previous: list[ChatMessage] | None = None
    compactions = 0
    for i in range(200):
        result = plan_prompt(
            StrategySpec.parse("buffer"),
            system_prompt="sys",
            summary=None,
            history=history,
            user=u(f"q{i} " * (i % 5 + 1)),
            count=COUNT,
            budget=120,
        )
        assert result.tokens <= 120
        if result.drop:
            compactions += 1
            history = history[result.drop :]
        elif previous is not None:
            assert result.messages[: len(previous)] == previous
        history = [*history, result.messages[-1], a(f"a{i} " * (i % 7 + 1))]
        previous = [*result.messages, history[-1]]
    assert 5 < compactions < 60


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("buffer", "buffer", "buffer"),
        ("window", "window", "window:6"),
        ("Window:3", "window", "window:3"),
        ("summary", "summary", "summary"),
        ("summary+buffer", "summary_buffer", "summary_buffer"),
        ("summary-buffer:512", "summary_buffer", "summary_buffer:512"),
    ],
)
def test_strategy_spec_parses_and_prints(text: str, name: str, expected: str) -> None:
    spec = StrategySpec.parse(text)
    assert (spec.name, str(spec)) == (name, expected)


@pytest.mark.parametrize("text", ["lru", "window:0", "window:x", "buffer:3", "summary:9"])
def test_bad_strategy_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        StrategySpec.parse(text)


def test_head_and_exchange_helpers() -> None:
    assert head_messages(None, None) == []
    assert head_messages(None, "s") == [sys_(f"{SUMMARY_HEADING}\ns")]
    assert exchange_starts([a("x"), u("q"), a("r"), u("q2")]) == [0, 1, 3, 4]
    prompt = summary_prompt("before", [u("hi"), a("hello")])
    assert (
        prompt[1]["content"]
        == "Summary so far:\nbefore\n\nConversation:\nuser: hi\nassistant: hello"
    )
