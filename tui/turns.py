"""The turn being written: sending a message, showing what its worker reports, ending it.

The chat screen has one :class:`Turns`. It starts the turn worker
(:func:`tui.workers.run_turn`, which sends through the conversation's session) and is what
that worker reports to. The reply being written (``live``) goes on while another
conversation is shown, and is shown again on coming back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from textual.screen import Screen

from assistant.confidence import low_confidence, low_confidence_note
from tui import workers
from tui.budget import Budget, conversation_budget
from tui.live import LiveReply, StepRecord, TurnOutcome
from tui.workers import JobHost, UiThread

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore
    from assistant.rag.index import Hit
    from assistant.services import Services
    from tui.widgets.chat_widgets import ChatWidgets

T = TypeVar("T")


class TurnHost(JobHost, Protocol):
    """What a turn needs of the chat screen (besides its widgets)."""

    ready: bool  # the model is loaded

    @property
    def conversation_id(self) -> str | None:
        """The shown conversation (None: a new one)."""

    @property
    def mode(self) -> str:
        """How the shown conversation is answered: "chat", "documents" or "agent"."""

    @property
    def comparing(self) -> bool:
        """/compare is writing its two answers."""

    @property
    def store(self) -> MemoryStore | None:
        """The memory store; None while it is opening."""

    def ask(self, modal: Screen[T], callback: Callable[[T | None], None]) -> None:
        """Show a modal; ``callback`` gets what it dismisses with."""

    def ensure_conversation(self) -> str:
        """The shown conversation's id, storing it first if it is new."""

    def refresh_conversations(self) -> None:
        """Re-list the conversations."""


class Turns:
    """Sends messages, one reply at a time, and shows each turn as its worker reports it."""

    def __init__(
        self, host: TurnHost, services: Services, ui: UiThread, widgets: ChatWidgets
    ) -> None:
        self.host = host
        self.services = services
        self.ui = ui
        self.widgets = widgets
        self.live: LiveReply | None = None
        self.last_hits: list[Hit] = []  # the last documents answer's sources
        self._counts = 0  # budget counts asked for: only the latest is shown

    def send(self, text: str) -> None:
        """Send a message in the current mode; refuse (keeping the text) when busy."""
        host, prompt = self.host, self.widgets.prompt
        if not host.ready or host.store is None:
            host.notify("the model is still loading; your message is kept", severity="warning")
            return
        if self.live is not None or host.comparing:
            host.notify("a reply is being written; press Esc to stop it", severity="warning")
            return
        prompt.remember(text)
        prompt.clear_text()
        model = self.services.backend.model_name
        live = LiveReply(host.ensure_conversation(), text, mode=host.mode, model=model)
        self.live = live
        self.widgets.transcript.start_turn(live)
        self.widgets.status.state = "writing…"
        self.widgets.sidebar.live = live.conversation_id
        run = workers.run_turn
        host.start("generate", run, self.ui, self, self.services, live, self.measure_budget)

    # -- what the turn worker reports (on the UI thread) -------------------------------

    def ask(self, modal: Screen[T], callback: Callable[[T | None], None]) -> None:
        """Show a modal (a risky tool asking to run)."""
        self.host.ask(modal, callback)

    def show_step(self, live: LiveReply, record: StepRecord) -> None:
        """Show a new or updated agent step under the reply."""
        self.widgets.transcript.show_step(live, record)

    def show_sources(self, hits: list[Hit], cited: list[int]) -> None:
        """Fill the sources panel with the last answer's sources and show it."""
        self.last_hits = hits
        panel = self.widgets.sources
        panel.cited = cited
        panel.hits = hits
        panel.display = True

    def fact_stored(self, fact: str) -> None:
        """Acknowledge a "remember that ..." the session stored."""
        self.host.notify(f"remembered: {fact}", markup=False)

    def show_thinking(self, live: LiveReply) -> None:
        """Fold a reasoning model's <think> text above its reply (collapsed)."""
        from tui.widgets.thinking_fold import ThinkingFold

        if live.view is not None and live.fold is None:
            live.fold = ThinkingFold(live=live)
            self.widgets.transcript.mount(live.fold, before=live.view)

    def finish_live(self, live: LiveReply, outcome: TurnOutcome) -> None:
        """The worker ended: render the reply once, in full, and report."""
        host, prompt, status = self.host, self.widgets.prompt, self.widgets.status
        self.live = None
        stopped, error = outcome.stopped, outcome.error
        done = outcome.done
        unsure = None if done is None else low_confidence(done.extra)
        cut = done.usage.completion_tokens if done and done.finish_reason == "length" else None
        if live.fold is not None:
            live.fold.finish()
        self.widgets.transcript.finish_live(
            live,
            stopped=stopped,
            failed=error is not None,
            note=None if unsure is None else low_confidence_note(unsure),
            cut=cut,
        )
        if error is not None:
            host.notify(error, severity="error", timeout=10, markup=False)
            if not prompt.text.strip():  # give the typed text back to edit and resend
                prompt.set_text(live.prompt)
        elif live.view is None and not stopped:
            host.notify("a reply finished in another conversation")
        # "interrupted": the word the store and the exports use for a reply cut short.
        status.state = "interrupted" if stopped else ("error" if error else "ready")
        if outcome.done is not None:
            status.tokens_per_s = outcome.done.timings.tokens_per_s
        if outcome.budget is not None and live.conversation_id == host.conversation_id:
            self._counts += 1  # counts asked for before the reply was stored are stale
            self.show_budget(outcome.budget)
        host.refresh_conversations()

    # -- the context budget ------------------------------------------------------------

    def measure_budget(self, conversation_id: str | None) -> Budget | None:
        """Count the next prompt's parts for a conversation (call off the UI thread)."""
        if not self.host.ready:
            return None
        documents = [h.text for h in self.last_hits] if self.host.mode == "documents" else []
        return conversation_budget(
            self.services.backend,
            self.host.store,
            conversation_id,
            config=self.services.config,
            documents=documents,
        )

    def update_budget(self) -> None:
        """Re-count the context budget of the shown conversation, in a worker."""
        self._counts += 1
        # Not exclusive: a count cancelled half-way would be a failed worker to whoever
        # waits for them all; a count overtaken by a later one is simply not shown.
        cid = self.host.conversation_id
        self.host.start("budget", self._count_budget, cid, self._counts, exclusive=False)

    def _count_budget(self, conversation_id: str | None, count: int) -> None:
        try:
            budget = self.measure_budget(conversation_id)
        except Exception:  # e.g. the conversation was just deleted
            return
        if budget is not None:
            self.ui(self._show_count, budget, count)

    def _show_count(self, budget: Budget, count: int) -> None:
        if count == self._counts:
            self.show_budget(budget)

    def show_budget(self, budget: Budget) -> None:
        """Show a measured budget in the context bar and the status bar."""
        self.widgets.context.budget = budget
        self.widgets.status.used = budget.used
        self.widgets.status.context = budget.context
