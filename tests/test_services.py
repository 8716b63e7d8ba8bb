"""Services: built once from the config, opening nothing a turn does not need."""

from __future__ import annotations

from pathlib import Path

from assistant.backends.base import Token
from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.rag.answer import NOTHING_FOUND
from assistant.responders import Sources
from assistant.services import Services, generation_options


def test_generation_options_carry_every_sampling_setting(home: Path) -> None:
    config = load_config({"temperature": 0.3, "top_p": 0.8, "seed": 5, "max_tokens": 77})
    options = generation_options(config, "c1")
    assert (options.temperature, options.top_p, options.seed, options.max_tokens) == (
        0.3, 0.8, 5, 77,
    )  # fmt: skip
    assert options.conversation_id == "c1"


def test_a_documents_turn_with_nothing_ingested_opens_no_index(home: Path) -> None:
    services = Services(load_config(), backend=ScriptedBackend(), store=MemoryStore.in_memory())
    session = services.session()
    events = list(session.send("Where is the spare key?", services.responder("documents")))
    assert "".join(e.text for e in events if isinstance(e, Token)) == NOTHING_FOUND
    assert [e.found for e in events if isinstance(e, Sources)] == [False]
    assert not services.paths.documents.exists()  # no chromadb, no embedder loaded
    assert session.messages()[-1].content == NOTHING_FOUND
