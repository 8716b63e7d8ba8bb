"""Work done off the UI thread: opening the store, loading a model, turns (ingest: source_commands).

The chat screen starts each of these in a thread worker. They import their heavy libraries
themselves and check ``is_cancelled`` between events. A turn only renders the events of
:meth:`~assistant.memory.session.ChatSession.send` (the session owns the turn): streamed
tokens go into ``LiveReply.parts``, which the screen shows on its own timer; everything
else reaches the UI through :class:`UiThread`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.worker import get_current_worker

from assistant.backends.base import Backend, Done, Token
from assistant.config import Config
from assistant.errors import AssistantError
from tui.live import LiveReply, StepRecord, TurnOutcome

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen

    from assistant.rag.index import Hit
    from assistant.services import Services
    from tui.budget import Budget

BackendFactory = Callable[[Config], Backend]
T = TypeVar("T")


class UiThread:
    """Calls into the UI thread from a worker; quietly nothing once the app is closing."""

    def __init__(self, app: App[Any]) -> None:
        self.app = app

    def __call__(self, callback: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return self.app.call_from_thread(callback, *args, **kwargs)
        except RuntimeError:
            return None


class JobHost(Protocol):
    """Where work is started and its news shown: the chat screen."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a notification."""

    def start(
        self, group: str, work: Callable[..., None], *args: Any, exclusive: bool = True
    ) -> None:
        """Run ``work(*args)`` in a thread worker (``exclusive``: cancelling the one
        running in ``group``)."""


class StartHost(JobHost, Protocol):
    """What loading and opening report to (always called on the UI thread)."""

    def set_state(self, text: str) -> None:
        """Show what the app is doing in the status bar."""

    def store_ready(self) -> None:
        """The memory store is open."""

    def backend_ready(self, config: Config, backend: Backend) -> Backend | None:
        """A backend is loaded: use it; return the one it replaces."""

    def load_failed(self, config: Config, message: str) -> None:
        """A backend did not load (the one loaded before, if any, stays)."""


class TurnReport(Protocol):
    """What a turn reports to (always called on the UI thread)."""

    def ask(self, modal: Screen[T], callback: Callable[[T | None], None]) -> None:
        """Show a modal; ``callback`` gets what it dismisses with."""

    def show_step(self, live: LiveReply, record: StepRecord) -> None:
        """Show a new or updated agent step."""

    def show_sources(self, hits: list[Hit], cited: list[int]) -> None:
        """Show the sources of a documents answer."""

    def fact_stored(self, fact: str) -> None:
        """Say that a "remember that ..." was stored."""

    def show_thinking(self, live: LiveReply) -> None:
        """A reasoning model began a <think> block: fold it above the reply."""

    def finish_live(self, live: LiveReply, outcome: TurnOutcome) -> None:
        """The turn ended."""


def failure(exc: Exception) -> str:
    """What the user is told about an error: a known one as it is, anything else named."""
    return str(exc) if isinstance(exc, AssistantError) else f"{type(exc).__name__}: {exc}"


# -- start -----------------------------------------------------------------------------


def open_store(ui: UiThread, host: StartHost, services: Services) -> None:
    """Open the memory database (sqlite_utils is imported here, not at startup)."""
    try:
        services.store  # noqa: B018 - opened on first use, then kept
    except Exception as exc:  # a locked or corrupt database: say what happened
        ui(host.notify, f"cannot open the memory database: {exc}", severity="error", markup=False)
        return
    ui(host.store_ready)


def open_loaded(
    config: Config, factory: BackendFactory | None, backend: Backend | None = None
) -> Backend:
    """Open a backend for ``config`` (unless given) and load it (off the UI thread)."""
    if backend is None:
        if factory is None:
            from assistant.engine import open_backend

            factory = open_backend
        backend = factory(config)
    load = getattr(backend, "load", None)
    if load is not None:
        load()
    return backend


def load_backend(
    ui: UiThread,
    host: StartHost,
    config: Config,
    factory: BackendFactory | None,
    backend: Backend | None = None,
) -> None:
    """Open and load a backend for ``config`` (or load ``backend``); close the one replaced."""
    ui(host.set_state, f"loading {config.model}…")
    try:
        backend = open_loaded(config, factory, backend)
    except Exception as exc:  # a missing or broken model must not close the app
        ui(host.load_failed, config, failure(exc))
        return
    old = ui(host.backend_ready, config, backend)
    if old is not None and old is not backend:
        close = getattr(old, "close", None)
        if close is not None:
            close()


# -- turns -----------------------------------------------------------------------------


def run_turn(
    ui: UiThread,
    host: TurnReport,
    services: Services,
    live: LiveReply,
    budget: Callable[[str], Budget | None],
    start: Callable[..., Any] | None = None,
) -> None:
    """Send ``live.prompt`` through the conversation's session in ``live.mode``; show its
    events. Esc cancels the worker: closing the stream stores the partial reply.

    ``start(session, responder)``, when given, opens the turn's events instead of
    ``send`` (regenerate and edit, :mod:`tui.version_commands`)."""
    worker = get_current_worker()
    outcome = TurnOutcome()
    try:
        session = services.session(live.conversation_id)

        def approve(tool: str, tool_input: str) -> bool:
            return approve_in_modal(ui, host, tool, tool_input)

        responder = services.responder(live.mode, approve=approve)
        stream = start(session, responder) if start else session.send(live.prompt, responder)
        try:
            for event in stream:
                show_event(event, live, outcome, ui, host)
                if worker.is_cancelled:
                    break
        finally:
            stream.close()  # the session stores a reply cut short as interrupted
    except Exception as exc:  # a bug or a broken file must not close the app
        outcome.error = failure(exc)
    try:
        outcome.budget = budget(live.conversation_id)
    except Exception:  # counting is informative only; never lose the reply over it
        outcome.budget = None
    ui(host.finish_live, live, outcome)


def show_event(
    event: Any, live: LiveReply, outcome: TurnOutcome, ui: UiThread, host: TurnReport
) -> None:
    """Show one event of a turn (what ``assistant.cli.turns.render`` does on a terminal)."""
    from assistant.agent.events import Observed, ToolCalled
    from assistant.memory.reply import FactStored, FinalText
    from assistant.responders import Sources
    from assistant.thinking import Thinking

    if isinstance(event, Token):
        # The screen shows the parts on its own timer, so the worker never waits for a
        # render: generation runs at the backend's pace.
        live.parts.append(event.text)
    elif isinstance(event, Thinking):  # shown folded, by the fold's own timer
        if event.moved:  # what streamed as the answer was reasoning
            live.parts.clear()
        live.thinking.append(event.text)
        if len(live.thinking) == 1:
            ui(host.show_thinking, live)
    elif isinstance(event, Done):
        outcome.done = event
    elif isinstance(event, FinalText):  # the agent's answer as stored, replacing the stream
        outcome.final = event
        live.parts[:] = [event.text]
    elif isinstance(event, Sources):
        ui(host.show_sources, event.hits, event.cited)
    elif isinstance(event, FactStored):
        ui(host.fact_stored, event.fact)
    elif isinstance(event, ToolCalled):
        record = StepRecord(event.index, event.tool, event.tool_input, event.thought)
        live.steps.append(record)
        ui(host.show_step, live, record)
    elif isinstance(event, Observed):
        for record in live.steps:
            if record.index == event.index:
                record.observation, record.error = event.text, event.error
                ui(host.show_step, live, record)


def approve_in_modal(ui: UiThread, host: TurnReport, tool: str, tool_input: str) -> bool:
    """Ask in a modal (from the worker thread) whether a risky tool may run."""
    from tui.screens.confirm import ConfirmScreen

    worker = get_current_worker()
    answered = threading.Event()
    answer: list[bool] = []

    def done(value: bool | None) -> None:
        answer.append(bool(value))
        answered.set()

    def ask() -> None:
        question = f"Let the assistant run the risky tool {tool}({tool_input!r})?"
        host.ask(ConfirmScreen(question, yes="Run it", no="Refuse"), done)

    ui(ask)
    while not answered.wait(0.1):
        if worker.is_cancelled:
            return False
    return answer[0]
