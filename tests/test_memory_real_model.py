"""Memory on the real bundled model: its tokenizer over 500 turns, and real summaries."""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence

import pytest
from sqlite_utils import Database

from assistant.backends.base import ChatMessage, Event, GenerationOptions, Token
from assistant.backends.llama_local import LlamaCppBackend
from assistant.backends.scripted import ScriptedBackend
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore

pytestmark = pytest.mark.slow

_TEXT = (
    "the quick brown fox jumps over lazy dog tokenizer café naïve 2026 model context window "
    'summary memory København 東京 emoji 🙂 function(x) => x**2; JSON {"a": [1, 2]} '
    "antidisestablishmentarianism"
)
WORDS = _TEXT.split()


class RealTokenizerScripted:
    """Generates like the scripted fake (fast) but counts with the real model's tokenizer,
    and checks that every prompt it is sent fits the budget it was given."""

    def __init__(self, real: LlamaCppBackend, reply_reserve: int, summary_tokens: int) -> None:
        self.real = real
        self.fake = ScriptedBackend(context_length=real.context_length)
        self.reply_reserve = reply_reserve
        self.summary_tokens = summary_tokens
        self.max_prompt = 0
        self.summary_calls = 0
        self.rng = random.Random(4)
        self.counts: dict[tuple[tuple[str, str], ...], int] = {}

    @property
    def model_name(self) -> str:
        return "smol-tokenizer+scripted"

    @property
    def context_length(self) -> int:
        return self.real.context_length

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        # Remember recent counts: the prompt sent was usually just counted by the planner,
        # and tokenizing 2k tokens twice a turn is most of this test's time.
        key = tuple((m["role"], m["content"]) for m in messages)
        if key not in self.counts:
            if len(self.counts) > 8:
                self.counts.clear()
            self.counts[key] = self.real.count_prompt_tokens(messages)
        return self.counts[key]

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        tokens = self.count_prompt_tokens(messages)
        is_summary = messages[0]["content"].startswith("You summarize")
        room = options.max_tokens if is_summary else self.reply_reserve
        assert room is not None and tokens + room <= self.context_length, (tokens, room)
        self.summary_calls += is_summary
        if not is_summary:
            self.max_prompt = max(self.max_prompt, tokens)
        reply = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 40)))
        self.fake.enqueue(reply)
        # The fake counts words; the real tokenizer sees more tokens than that.
        yield from self.fake.stream([messages[-1]], options)


@pytest.mark.parametrize("strategy", ["buffer", "window:8", "summary", "summary_buffer:600"])
def test_500_turns_never_exceed_the_context_with_the_real_tokenizer(
    smol: LlamaCppBackend, strategy: str
) -> None:
    reserve = 64
    backend = RealTokenizerScripted(smol, reserve, 256)
    store = MemoryStore(Database(memory=True))
    session = ChatSession.create(
        store,
        backend,
        strategy=strategy,
        system_prompt="You are a helpful assistant.",
        options=GenerationOptions(max_tokens=reserve),
        reply_reserve=reserve,
    )
    rng = random.Random(7)
    for turn in range(500):
        text = f"turn {turn}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60)))
        if turn % 97 == 0:
            text = f"remember that fact {turn} is {rng.choice(WORDS)}"
        for _ in session.send(text):
            pass
    assert 0 < backend.max_prompt <= smol.context_length - reserve
    assert len(session.messages()) == 1000
    assert all(m.status == "complete" for m in session.messages())
    if strategy.startswith("summary"):
        assert backend.summary_calls > 0 and store.latest_summary(session.conversation_id)
    # Compactions are rare, not every turn: prompts grow up to the limit before one.
    if strategy == "buffer":
        assert backend.max_prompt > (smol.context_length - reserve) // 2
    if strategy == "summary_buffer:600":
        assert backend.max_prompt > 600


def test_real_model_writes_the_summary_and_reuses_the_kv_cache(smol: LlamaCppBackend) -> None:
    store = MemoryStore(Database(memory=True))
    # A small budget (context 2048 minus a 1700-token reserve) forces a compaction soon.
    session = ChatSession.create(
        store,
        smol,
        strategy="summary_buffer:150",
        options=GenerationOptions(max_tokens=24, temperature=0.0),
        reply_reserve=1700,
        summary_max_tokens=48,
    )
    questions = [
        "My name is Ada and I live in Lisbon. What is the capital of France?",
        "What is two plus two?",
        "Name a primary colour.",
        "What language is spoken in Brazil?",
        "What is the largest planet?",
    ]
    # The user's words alone outgrow the 150-token buffer by the fourth turn, whatever the
    # model replies (its reply lengths differ from one CPU to another).
    context = " I am writing this from my desk by the window on a quiet afternoon." * 4
    for question in questions:
        out = "".join(e.text for e in session.send(question + context) if isinstance(e, Token))
        assert out.strip()
    summary = store.latest_summary(session.conversation_id)
    assert summary is not None and summary.content.strip()
    assert summary.model == "smollm2-135m"
    replies = [m for m in session.messages() if m.role == "assistant"]
    assert all(m.status == "complete" and m.prompt_tokens for m in replies)
    assert all(m.prompt_tokens is not None and m.prompt_tokens <= 2048 - 1700 for m in replies)
    # Append-only prompts: a turn without compaction reuses the cached prefix.
    assert any((m.cached_tokens or 0) > 0 for m in replies[1:])
