"""``/compare``: one prompt answered by the base model and by the adapter, side by side.

Neither answer is stored in a conversation. The base model is a second backend, loaded on
first use and kept for later comparisons while the model stays the same. ``/prefer base`` or
``/prefer adapter`` then stores the two answers as a preference pair (chosen / rejected,
source "compare") of the open conversation, for `assistant train prepare --preferences`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from assistant.backends.base import Backend, ChatMessage, Done, Token
from assistant.config import Config
from tui.workers import BackendFactory, JobHost, UiThread, failure, open_loaded

if TYPE_CHECKING:
    from assistant.services import Services
    from tui.widgets.chat_widgets import ChatWidgets
    from tui.widgets.message import ChatMessageView

# How often an answer being written is re-shown.
SHOW_EVERY_S = 0.2


class Comparison:
    """``/compare`` on the chat screen: its row of answers, its worker, whether it runs."""

    def __init__(
        self,
        host: JobHost,
        services: Services,
        ui: UiThread,
        factory: BackendFactory | None,
        widgets: ChatWidgets,
    ) -> None:
        self.host = host
        self.services = services
        self.ui = ui
        self.base = BaseModel(factory)
        self.transcript, self.status = widgets.transcript, widgets.status
        self.running = False  # its two answers are being written
        # the last comparison: its prompt, conversation and answers (base, adapter)
        self.last: tuple[list[ChatMessage], str | None, list[str]] | None = None

    def start(self, prompt: str, system: str | None, conversation_id: str | None = None) -> None:
        """Show ``prompt`` answered by the base model and by the adapter, side by side."""
        config = self.services.config
        views = self.transcript.add_comparison(prompt, config.model, config.adapter or "")
        self.running = True
        self.status.state = "comparing…"
        answers: list[str] = []
        self.last = (_messages(prompt, system), conversation_id, answers)
        work = (self.ui, self.services, self.base, prompt, system, views, self.done, answers)
        self.host.start("compare", compare, *work)

    def prefer(self, which: str) -> str:
        """Store the last comparison as a pair, ``which`` ("base" or "adapter") chosen.

        Returns what to tell the user.

        Raises:
            AssistantError: no finished comparison, no open conversation, equal answers.
        """
        from assistant.errors import AssistantError
        from assistant.memory.preferences import add_pair

        if which not in ("base", "adapter"):
            raise AssistantError("usage: /prefer base|adapter (the better answer of /compare)")
        if self.last is None or self.running or len(self.last[2]) != 2:
            raise AssistantError("compare first: /compare PROMPT, then /prefer base|adapter")
        messages, conversation_id, (base, adapter) = self.last
        store = self.services.store
        if conversation_id is None or store is None:
            raise AssistantError("open or start a conversation first: pairs belong to one")
        chosen, rejected = (base, adapter) if which == "base" else (adapter, base)
        prompt = [{"role": m["role"], "content": m["content"]} for m in messages]
        add_pair(store, conversation_id, prompt, chosen, rejected)
        self.last = None  # one pair a comparison
        marked = store.conversation(conversation_id).marked_for_training
        hint = "" if marked else "; mark the conversation (/train) to train on it"
        return f"stored: the {which} answer preferred{hint}"

    def done(self, error: str | None) -> None:
        """Both answers are written (or one failed)."""
        self.running = False
        self.status.state = "error" if error else "ready"
        if error:
            self.host.notify(error, severity="error", timeout=10, markup=False)
        self.transcript.scroll_end(animate=False)


class BaseModel:
    """The base model of the current adapter, loaded once (call off the UI thread)."""

    def __init__(self, factory: BackendFactory | None) -> None:
        self.factory = factory
        self._loaded: tuple[tuple[str, str], Backend] | None = None

    def get(self, config: Config) -> Backend:
        """The loaded base model of ``config`` (without its adapter)."""
        key = (config.model, config.backend)
        if self._loaded is not None:
            if self._loaded[0] == key:
                return self._loaded[1]
            close = getattr(self._loaded[1], "close", None)
            if close is not None:  # the model changed: free the old base
                close()
            self._loaded = None
        backend = open_loaded(dataclasses.replace(config, adapter=None), self.factory)
        self._loaded = (key, backend)
        return backend


def _messages(prompt: str, system: str | None) -> list[ChatMessage]:
    messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def compare(
    ui: UiThread,
    services: Services,
    base: BaseModel,
    prompt: str,
    system: str | None,
    views: tuple[ChatMessageView, ChatMessageView],
    done: Callable[[str | None], None],
    answers: list[str] | None = None,
) -> None:
    """Write the base model's answer into ``views[0]``, then the adapter's into ``views[1]``
    (same prompt, same settings, same seed); ``done`` gets the error, if any. ``answers``
    gets the two answers' text (base first) once both are whole."""
    error: str | None = None
    written: list[str] = []
    try:
        messages = _messages(prompt, system)
        options = services.options("compare")
        if options.seed is None:
            # Unseeded, each model would sample with its own random seed: fix one, so the
            # two answers differ by the adapter and not by the dice.
            options = dataclasses.replace(options, seed=0)
        pairs = ((base.get(services.config), views[0]), (services.backend, views[1]))
        for backend, view in pairs:
            parts: list[str] = []
            shown = time.monotonic()
            finished: Done | None = None
            for event in backend.stream(messages, options):
                if isinstance(event, Token):
                    parts.append(event.text)
                    if time.monotonic() - shown > SHOW_EVERY_S:
                        ui(view.set_text, "".join(parts))
                        shown = time.monotonic()
                else:
                    finished = event
            speed = f"\n\n*{finished.timings.tokens_per_s:.1f} tok/s*" if finished else ""
            ui(view.set_text, "".join(parts).strip() + speed)
            written.append("".join(parts).strip())
        if answers is not None:
            answers.extend(written)
    except Exception as exc:  # a bug or a broken file must not close the app
        error = failure(exc)
    ui(done, error)
