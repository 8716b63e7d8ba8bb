"""Low-confidence answers are flagged in the app and on the command line (issue 13)."""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.base import (
    ChatMessage,
    Done,
    Event,
    GenerationOptions,
    Timings,
    Token,
    Usage,
)
from assistant.backends.scripted import ScriptedBackend
from assistant.cli.turns import render
from assistant.confidence import LOW_LOGPROB_CONFIDENCE, low_confidence, low_confidence_note
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.rag.index import Hit
from tests.test_tui_app import settle, shown, type_and_send
from tui.app import ChatApp
from tui.widgets.message import ChatMessageView


class LogprobBackend(ScriptedBackend):
    """The scripted backend, recording one fixed log-probability per token as llama.cpp does."""

    def __init__(self, replies: list[str], logprob: float) -> None:
        super().__init__(replies)
        self.logprob = logprob

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        for event in super().stream(messages, options):
            if isinstance(event, Done):
                n = event.usage.completion_tokens
                event.extra.update(logprobs=[self.logprob] * n, entropies=[1.0] * n)
            yield event


def test_only_a_generated_answer_below_the_threshold_is_flagged() -> None:
    low = LOW_LOGPROB_CONFIDENCE - 0.01
    assert low_confidence({"confidence": low, "confidence_basis": "logprob"}) == low
    assert low_confidence({"confidence": 0.9, "confidence_basis": "logprob"}) is None
    # A quote's support score is not a measured signal of being right: never flagged.
    assert low_confidence({"confidence": 0.1, "confidence_basis": "support"}) is None
    assert low_confidence({}) is None
    assert "0.42" in low_confidence_note(0.42)


def _done(extra: dict[str, Any]) -> Done:
    return Done("stop", Usage(0, 0), Timings(0.0, 0.0, 0.0), extra=extra)


def test_the_cli_says_when_an_answer_is_unsure(capsys: pytest.CaptureFixture[str]) -> None:
    extra = {"confidence": 0.31, "confidence_basis": "logprob"}
    done = _done(extra)
    render(iter([Token("Maybe 7."), done]), stream=True)
    captured = capsys.readouterr()
    assert captured.out.strip() == "Maybe 7."
    assert low_confidence_note(0.31) in captured.err
    render(iter([Token("Sure."), _done({**extra, "confidence": 0.95})]), stream=True)
    assert "low confidence" not in capsys.readouterr().err


def _hits(tmp: Path) -> list[Hit]:
    doc = tmp / "kettle.md"
    doc.write_text("# Kettle\n\nDescale monthly.\nUse vinegar.\n")
    return [Hit(str(doc), None, 3, 4, "Kettle", 0.9, "Descale monthly. Use vinegar.", 0.8)]


@pytest.mark.parametrize("logprob, flagged", [(-1.0, True), (-0.05, False)])
async def test_the_app_marks_a_low_confidence_documents_answer(
    tmp_path: Path, logprob: float, flagged: bool
) -> None:
    hits = _hits(tmp_path)
    backend = LogprobBackend(["Descale it monthly [1]."], logprob)
    config = load_config()
    app = ChatApp(config, backend=backend, store=MemoryStore.in_memory(), doc_search=lambda q: hits)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        app.chat.set_mode("documents")
        await type_and_send(pilot, "How do I clean the kettle?")
        await settle(app, pilot)
        role, text = shown(app)[-1]
        assert role == "assistant" and text.startswith("Descale it monthly [1].")
        note = low_confidence_note(round(math.exp(logprob), 4))
        assert (note in text) is flagged
        view = list(app.query(ChatMessageView))[-1]
        assert view.has_class("unsure") is flagged
        # The stored reply is the answer alone: the marker is only shown.
        store = app.chat.store
        assert store is not None
        stored = store.messages(app.chat.conversation_id)[-1]  # type: ignore[arg-type]
        assert stored.content == "Descale it monthly [1]."


def test_low_confidence_is_on_the_done_event_the_app_reads() -> None:
    # The documents responder turns the backend's logprobs into the extra the marker reads.
    from assistant.rag.responder import _with_confidence

    n = 4
    done = _done({"logprobs": [-1.0] * n, "entropies": [1.0] * n})
    extra: dict[str, Any] = _with_confidence(done, "generative").extra
    assert extra["confidence_basis"] == "logprob"
    assert low_confidence(extra) == pytest.approx(math.exp(-1.0), abs=1e-4)
