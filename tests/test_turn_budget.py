"""Every mode through the one turn owner, on the real model with a small context.

A 200-turn conversation, then agent turns (with a tool whose result is far longer than the
context) and documents turns (real embedder and index): no prompt sent, with the room its
reply may take, ever exceeds ``n_ctx``.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import pytest
from langchain_core.tools import StructuredTool

from assistant.agent.events import AgentResult
from assistant.backends.base import ChatMessage, Event, GenerationOptions, Token
from assistant.backends.llama_local import LlamaCppBackend
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.responders import Sources
from assistant.services import Services
from assistant.tools import make_calculator_tool
from tests.conftest import TEST_THREADS
from tests.fixtures_rag.build import DOCS

pytestmark = pytest.mark.slow
N_CTX = 1024


class Watched:
    """The real backend, recording the largest prompt plus reply room it was sent."""

    def __init__(self, real: LlamaCppBackend) -> None:
        self.real = real
        self.peak = 0
        self.calls = 0

    @property
    def model_name(self) -> str:
        return self.real.model_name

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
        need = self.real.count_prompt_tokens(messages) + (options.max_tokens or 0)
        self.peak = max(self.peak, need)
        self.calls += 1
        assert need <= N_CTX, f"prompt + reply room {need} > n_ctx {N_CTX}"
        yield from self.real.stream(messages, options)


@pytest.fixture(scope="module")
def small(smol_path: Path) -> Iterator[LlamaCppBackend]:
    backend = LlamaCppBackend(
        smol_path, name="smollm2-135m", n_ctx=N_CTX, n_threads=TEST_THREADS, n_threads_batch=2
    )
    backend.load()
    yield backend
    backend.close()


def _long_note(query_words: str) -> str:
    filler = " ".join(
        f"Paragraph {i} talks about gardening, compost and tomatoes." for i in range(400)
    )
    return f"{filler} The {query_words} is 4711."


def test_200_turns_then_agent_and_documents_turns_never_exceed_the_context(
    small: LlamaCppBackend, home: Path, tmp_path: Path
) -> None:
    watched = Watched(small)
    # Short summaries keep the 200 turns' compaction quick (it is what the test waits on).
    config = load_config(
        {
            "max_tokens": 48,
            "temperature": 0.0,
            "memory_strategy": "summary_buffer",
            "memory_summary_tokens": 24,
        }
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("kettle.md", "garden.rst"):
        shutil.copy(DOCS / name, notes / name)
    tool = StructuredTool.from_function(
        lambda query: _long_note("locker code"),
        name="search_notes",
        description="Search the user's notes. Input: what to look for.",
    )
    services = Services(
        config,
        backend=watched,
        store=MemoryStore.in_memory(),
        tools=[tool, make_calculator_tool()],  # search_notes' result overflows on its own
    )
    services.index.ingest([str(notes)])
    session = services.session()
    rng = random.Random(3)
    words = ["the", "kettle", "boat", "garden", "tomato", "river", "lamp", "coffee"]
    store = services.store
    # 200 turns already in the conversation (as an import would leave them).
    for turn in range(200):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 12)))
        store.add_message(session.conversation_id, "user", f"turn {turn}: {text}")
        store.add_message(session.conversation_id, "assistant", f"reply {turn}: {text[::-1]}")

    agent = services.responder("agent")
    for question in ("What is my locker code? Search my notes.", "What is 17*23?"):
        events = list(session.send(question, agent))
        assert isinstance(events[-1], AgentResult)
    documents = services.responder("documents")
    for question in ("How do I descale the kettle?", "When should tomatoes be planted?"):
        events = list(session.send(question, documents))
        assert any(isinstance(e, Token) for e in events)
        sources = [e for e in events if isinstance(e, Sources)]
        assert sources and sources[0].hits
    for question in ("Thanks! Anything else?", "remember that my locker is number 12"):
        list(session.send(question))

    assert watched.calls >= 6 and 0 < watched.peak <= N_CTX
    replies = [m for m in session.messages() if m.role == "assistant"][200:]
    assert [m.memory["mode"] for m in replies] == ["agent"] * 2 + ["documents"] * 2 + ["chat"] * 2
    assert all(m.status == "complete" for m in replies)
    assert replies[0].steps and replies[2].memory["sources"]
    # The history was compacted into a summary, and the fact stored in chat mode.
    assert store.latest_summary(session.conversation_id) is not None
    assert [f.content for f in store.facts()] == ["my locker is number 12"]
