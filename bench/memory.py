"""Memory benchmark: prompt building at turn 500, and KV-cache reuse per strategy.

- ``prompt_build_ms``: time to build the prompt for turn 500 (store reads, strategy, token
  counting with the real tokenizer) after 499 turns, per strategy, median of 9 (a compaction
  due at that turn is done once before timing); beside it
  ``count_only_ms``, the raw llama.cpp render+tokenize of the same final prompt, and their
  ratio. The 499 earlier turns use fast scripted replies but the real tokenizer.
- ``cache_reuse``: over 20 real turns on the bundled model, the share of prompt tokens whose
  KV entries were reused (``sum(cached_tokens) / sum(prompt_tokens)`` from ``Done.usage``).

The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Generator, Sequence
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlite_utils import Database

from assistant.backends.base import (
    ChatMessage,
    Done,
    Event,
    GenerationOptions,
)
from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.backends.scripted import ScriptedBackend
from assistant.bundled import bundled_model_path
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore

REPEATS = 9
STRATEGIES = ("buffer", "window:4", "summary", "summary_buffer")
WORDS = [
    "the",
    "a",
    "of",
    "model",
    "memory",
    "context",
    "token",
    "cache",
    "summary",
    "prompt",
    "river",
    "mountain",
    "city",
]
QUESTIONS = [
    "Tell me one fact about the Moon.",
    "And one about Mars?",
    "What is a prime number?",
    "Name a famous painter.",
    "What is the boiling point of water?",
    "Give me a synonym for happy.",
    "What is the capital of Japan?",
    "How many legs does a spider have?",
    "What colour is chlorophyll?",
    "Who wrote Hamlet?",
]


class RealCountFakeReplies:
    """Counts with the real tokenizer, replies with scripted text (fast history building)."""

    def __init__(self, real: LlamaCppBackend) -> None:
        self.real = real
        self.fake = ScriptedBackend(context_length=real.context_length)
        self.rng = random.Random(1)

    model_name = "smol-tokenizer+scripted"

    @property
    def context_length(self) -> int:
        return self.real.context_length

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self.real.count_prompt_tokens(messages)

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        self.fake.enqueue(" ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(5, 40))))
        yield from self.fake.stream([messages[-1]], options)


def prompt_build(real: LlamaCppBackend, strategy: str) -> dict[str, float]:
    """Build 499 turns (scripted replies, real counts), then time turn 500's prompt."""
    backend = RealCountFakeReplies(real)
    store = MemoryStore(Database(memory=True))
    session = ChatSession.create(
        store,
        backend,
        strategy=strategy,
        options=GenerationOptions(max_tokens=64),
        reply_reserve=64,
    )
    rng = random.Random(2)
    for turn in range(499):
        text = f"turn {turn} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
        for _ in session.send(text):
            pass
    user = store.add_message(session.conversation_id, "user", "turn 500: what did we discuss?")
    session.prepare(user)  # any compaction due at turn 500 happens here, once
    builds, counts, build_cpu, count_cpu = [], [], [], []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        plan, _ = session.prepare(user)
        builds.append(time.perf_counter() - wall)
        build_cpu.append(time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        real.count_prompt_tokens(plan.messages)
        counts.append(time.perf_counter() - wall)
        count_cpu.append(time.process_time() - cpu)
    build_ms, count_ms = statistics.median(builds) * 1000, statistics.median(counts) * 1000
    build_cpu_ms = statistics.median(build_cpu) * 1000
    count_cpu_ms = statistics.median(count_cpu) * 1000
    return {
        "prompt_build_ms": round(build_ms, 2),
        "count_only_ms": round(count_ms, 2),
        "build_over_count": round(build_ms / count_ms, 2),
        "prompt_build_cpu_ms": round(build_cpu_ms, 2),
        "count_only_cpu_ms": round(count_cpu_ms, 2),
        "prompt_tokens": plan.tokens,
    }


def cache_reuse(real: LlamaCppBackend, strategy: str, turns: int = 20) -> dict[str, float]:
    """Run ``turns`` real turns; return the share of prompt tokens reused from the KV cache."""
    store = MemoryStore(Database(memory=True))
    session = ChatSession.create(
        store,
        real,
        strategy=strategy,
        options=GenerationOptions(max_tokens=32, temperature=0),
        reply_reserve=32,
        summary_max_tokens=64,
    )
    prompt = cached = compactions = 0
    for turn in range(turns):
        start_seq = session.conversation.prompt_start_seq
        for event in session.send(QUESTIONS[turn % len(QUESTIONS)] + f" (question {turn + 1})"):
            if isinstance(event, Done):
                prompt += event.usage.prompt_tokens
                cached += event.usage.cached_tokens
        compactions += session.conversation.prompt_start_seq != start_seq
    return {
        "cache_reuse": round(cached / prompt, 3),
        "compactions": compactions,
        "prompt_tokens": prompt,
    }


def main() -> None:
    n_ctx = int(os.environ.get("BENCH_N_CTX", "768"))
    real = LlamaCppBackend(
        bundled_model_path(),
        name="smollm2-135m",
        n_ctx=n_ctx,
        n_threads=1,
        n_threads_batch=1,
        defaults=SamplingDefaults(temperature=0.0, max_tokens=32, seed=1),
    )
    real.load()
    builds = {}
    for strategy in STRATEGIES:
        builds[strategy] = prompt_build(real, strategy)
        print(strategy, "turn 500", builds[strategy], flush=True)
    reuse = {}
    for strategy in STRATEGIES:
        reuse[strategy] = cache_reuse(real, strategy)
        print(strategy, "20 turns", reuse[strategy], flush=True)
    figures = {
        "bench": "memory",
        "model": real.model_name,
        "n_ctx": n_ctx,
        "prompt_build_ms": {s: b["prompt_build_ms"] for s, b in builds.items()},
        "count_only_ms": {s: b["count_only_ms"] for s, b in builds.items()},
        "build_over_count": {s: b["build_over_count"] for s, b in builds.items()},
        # CPU time is steadier than wall time on a shared machine.
        "prompt_build_cpu_ms": {s: b["prompt_build_cpu_ms"] for s, b in builds.items()},
        "count_only_cpu_ms": {s: b["count_only_cpu_ms"] for s, b in builds.items()},
        "cache_reuse": {s: r["cache_reuse"] for s, r in reuse.items()},
        "compactions_in_20_turns": {s: r["compactions"] for s, r in reuse.items()},
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
