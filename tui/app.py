"""The chat app: conversations sidebar, chat view, context bar, prompt box and status bar.

Long work (loading models, generating, ingesting, counting tokens) runs in thread workers
(tui/workers.py); slash commands live in tui/slash.py. Nothing heavy is imported here, so the
prompt accepts keys before the model or the memory database has loaded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Label

from assistant.backends.base import Backend, Done
from assistant.config import Config
from tui.budget import Budget
from tui.commands import UnknownCommandError, help_markdown, parse_slash
from tui.conversations import ConversationsMixin
from tui.keys import APP_KEYS, parse_keymap
from tui.live import LiveReply, StepRecord
from tui.palette import SlashCommandProvider
from tui.slash import SlashCommandsMixin
from tui.widgets.context_bar import ContextBar
from tui.widgets.conversation_list import ConversationList
from tui.widgets.message import STOPPED, ChatMessageView
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar
from tui.workers import WorkersMixin

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore
    from assistant.rag.index import Hit

BackendFactory = Callable[[Config], Backend]
# How often a streaming reply is re-shown (tokens are batched in between): 10 Hz reads
# as smooth text and keeps the UI's share of the GIL small.
FLUSH_INTERVAL_S = 0.1
# After a render that took t seconds, wait RENDER_BACKOFF * t before the next one, so
# rendering takes at most 1/(1 + RENDER_BACKOFF) of the time however long the reply grows.
RENDER_BACKOFF = 16
# The generating worker needs the GIL for every token: while the UI renders, a short switch
# interval hands it back within 1 ms instead of Python's default 5 ms.
SWITCH_INTERVAL_S = 0.001
NO_REPLY = "*(no reply)*"


class ChatApp(ConversationsMixin, SlashCommandsMixin, WorkersMixin, App[None]):
    """Chat with local models, with memory, tools and documents.

    Args:
        config: the settings.
        backend: a ready backend (tests); default: opened from ``config`` in a worker.
        store: the memory store (tests: ``MemoryStore.in_memory()``); default: opened from
            ``config`` in a worker.
        conversation_id: the conversation to open (a prefix will do).
        doc_search: ``query -> hits`` (default: the document index of ``config``).
        ingest: ``(paths, progress) -> report`` (default: the document index's ingest).
        tools: the agent's tools (default: ``default_tools(config)``).
        backend_factory: builds a backend for a config, used by ``/model`` and ``/adapter``
            (default: ``assistant.engine.open_backend``).
    """

    CSS_PATH = "app.tcss"
    TITLE = "assistant"
    COMMANDS = App.COMMANDS | {SlashCommandProvider}
    BINDINGS = [
        Binding(APP_KEYS["stop"], "stop", "Stop reply", id="stop"),
        Binding(APP_KEYS["new"], "new_conversation", "New chat", id="new"),
        Binding(APP_KEYS["sidebar"], "toggle_sidebar", "Chats", id="sidebar"),
        Binding(APP_KEYS["sources_panel"], "toggle_sources", "Sources", id="sources_panel"),
        Binding(APP_KEYS["focus_prompt"], "focus_prompt", "Prompt", id="focus_prompt", show=False),
        Binding(APP_KEYS["quit"], "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(
        self,
        config: Config,
        backend: Backend | None = None,
        *,
        store: MemoryStore | None = None,
        conversation_id: str | None = None,
        doc_search: Callable[[str], list[Hit]] | None = None,
        ingest: Callable[..., Any] | None = None,
        tools: Sequence[Any] | None = None,
        backend_factory: BackendFactory | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.keys = parse_keymap(config.keybindings)
        # Set once loaded (a given backend is loaded in the worker too): sending waits.
        self.backend: Backend | None = None
        self._initial_backend = backend
        self.store: MemoryStore | None = store
        self.conversation_id: str | None = None
        self._open_at_start = conversation_id
        self.doc_search = doc_search
        self.ingest_fn = ingest
        self.tools = list(tools) if tools is not None else None
        self.backend_factory = backend_factory
        self.live: LiveReply | None = None
        self.mode: str = "chat"  # "chat", "agent" (tools) or "documents"
        self.last_hits: list[Hit] = []
        self.search_query = ""
        self.comparing = False  # /compare is writing its two answers
        # /compare's base model: ((model, backend kind), loaded backend), kept between uses.
        self.comparison_backend: tuple[tuple[str, str], Backend] | None = None
        self._switch_interval = sys.getswitchinterval()

    # -- layout and start --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield ConversationList(id="sidebar")
            with Vertical(id="chat"):
                yield VerticalScroll(id="messages")
                yield ContextBar(id="context")
                yield PromptInput(
                    send_keys=self.keys.send, newline_keys=self.keys.newline, id="prompt"
                )
                yield StatusBar(id="status")
            yield SourcesPanel(id="sources")
        yield Footer()

    def on_mount(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # restored from __init__'s reading on unmount
        self.set_keymap(self.keys.app)
        self.query_one("#sources", SourcesPanel).display = False
        status = self.query_one(StatusBar)
        status.model = self.config.model
        self.prompt_box.focus()
        if self.store is None:
            self.open_store()
        else:
            self.store_ready()
        self.load_backend(self.config, self._initial_backend)

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)

    @property
    def prompt_box(self) -> PromptInput:
        """The prompt box."""
        return self.query_one("#prompt", PromptInput)

    @property
    def status_bar(self) -> StatusBar:
        """The status bar."""
        return self.query_one(StatusBar)

    def store_ready(self) -> None:
        """The memory store is open: list conversations and open the one asked for."""
        self.refresh_conversations()
        if self._open_at_start:
            try:
                assert self.store is not None
                found = self.store.conversation(self._open_at_start)
            except Exception as exc:  # MemoryNotFoundError: say so, start a new one
                self.notify(str(exc), severity="error", timeout=10)
            else:
                self.show_conversation(found.id)
            self._open_at_start = None

    def backend_ready(self, config: Config, backend: Backend) -> None:
        """A (new) backend is loaded: use it from now on."""
        self.config = config
        self.backend = backend
        self.status_bar.model = backend.model_name + (
            f" + {config.adapter}" if config.adapter else ""
        )
        self.status_bar.state = "ready"
        self.update_budget()

    def set_state(self, text: str) -> None:
        """Set the state shown in the status bar."""
        self.status_bar.state = text

    # -- conversations -----------------------------------------------------------------

    @on(ConversationList.Selected)
    def _switch(self, event: ConversationList.Selected) -> None:
        if event.conversation_id != self.conversation_id:
            self.show_conversation(event.conversation_id)
        self.prompt_box.focus()

    @on(ConversationList.SearchChanged)
    def _search(self, event: ConversationList.SearchChanged) -> None:
        self.search_query = event.query
        self.refresh_conversations()

    @on(ConversationList.DeleteRequested)
    def _delete_requested(self, event: ConversationList.DeleteRequested) -> None:
        self.delete_conversation(event.conversation_id)

    @on(ConversationList.RenameRequested)
    def _rename_requested(self, event: ConversationList.RenameRequested) -> None:
        self.rename_conversation(event.conversation_id, "")

    # -- sending -----------------------------------------------------------------------

    @on(PromptInput.Submitted)
    def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if not text:
            return
        try:
            parsed = parse_slash(text)
        except UnknownCommandError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return  # the text stays in the box to be fixed
        if parsed is not None:
            command, argument = parsed
            if self.run_slash(command, argument):
                self.prompt_box.remember(text)
                self.prompt_box.clear_text()
            return
        self.send_text(text)

    def send_text(self, text: str) -> None:
        """Send a message in the current mode; refuse (keeping the text) when busy."""
        if self.backend is None or self.store is None:
            self.notify("the model is still loading; your message is kept", severity="warning")
            return
        if self.live is not None or self.comparing:
            self.notify("a reply is being written; press Esc to stop it", severity="warning")
            return
        self.prompt_box.remember(text)
        self.prompt_box.clear_text()
        conversation_id = self.ensure_conversation()
        live = LiveReply(conversation_id, text, mode=self.mode)
        live.view = ChatMessageView("assistant", "…")
        self.live = live
        box = self.query_one("#messages", VerticalScroll)
        if self.mode == "chat":  # only ChatSession answers a failed turn's stored message
            self._drop_failed_turn(box, text)
        box.mount_all([ChatMessageView("user", text), live.view])
        box.scroll_end(animate=False)
        live.timer = self.set_interval(FLUSH_INTERVAL_S, lambda: self.show_live(live))
        self.set_state("writing…")
        self.query_one(ConversationList).live = conversation_id
        if self.mode == "agent":
            self.generate_agent(live)
        elif self.mode == "documents":
            self.generate_documents(live)
        else:
            self.generate_chat(live)

    def _drop_failed_turn(self, box: VerticalScroll, text: str) -> None:
        """Sending again what just failed with no reply: the session answers the stored
        message (it does not store it twice), so the failed turn's views go too."""
        views = list(box.query_children(ChatMessageView))
        if views and views[-1].role == "assistant":
            if views[-1].text not in ("", NO_REPLY, STOPPED):
                return
            failed = views[-2:]
        else:
            failed = views[-1:]
        if failed and failed[0].role == "user" and failed[0].text == text:
            for view in failed:
                view.remove()

    def show_live(self, live: LiveReply) -> None:
        """Show what the worker has generated so far (on a timer, every FLUSH_INTERVAL_S)."""
        now = time.monotonic()
        if live.rendering is not None:
            if not live.rendering.is_done:
                return  # the last fragment is still being parsed and laid out
            # Keep rendering to a small share of the time, so the worker (which needs
            # the GIL for each token) is not slowed down by long Markdown re-parses.
            live.next_show = now + RENDER_BACKOFF * (now - live.render_started)
            live.rendering = None
        count = len(live.parts)
        if live.view is None or count == live.shown or now < live.next_show:
            return
        live.shown = count
        live.render_started = now
        live.rendering = live.view.stream_text(live.text)
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    def show_step(self, live: LiveReply, record: StepRecord) -> None:
        """Show a new or updated agent step under the reply."""
        if live.view is None:
            return
        if record.view is None:
            self.query_one("#messages", VerticalScroll).mount(self._step_view(record))
        elif record.observation is not None:
            record.view.observe(record.observation, record.error)

    def finish_live(
        self,
        live: LiveReply,
        *,
        stopped: bool,
        error: str | None = None,
        done: Done | None = None,
        budget: Budget | None = None,
    ) -> None:
        """The worker ended: render the reply once, in full, and report."""
        self.live = None
        if live.timer is not None:
            live.timer.stop()
        view = live.view
        text = live.text
        if error is not None:
            if view is not None:
                view.set_text(text or NO_REPLY)
                view.add_class("error")
            self.notify(error, severity="error", timeout=10)
            if not self.prompt_box.text.strip():  # give the typed text back to edit and resend
                self.prompt_box.set_text(live.prompt)
        elif view is not None:
            view.finish_text(text + (STOPPED if stopped else ""))
            view.set_class(stopped, "stopped")
        elif not stopped:
            self.notify("a reply finished in another conversation")
        self.set_state("stopped" if stopped else ("error" if error else "ready"))
        if done is not None:
            self.status_bar.tokens_per_s = done.timings.tokens_per_s
        if budget is not None and live.conversation_id == self.conversation_id:
            self.show_budget(budget)
        self.refresh_conversations()
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    def show_budget(self, budget: Budget) -> None:
        """Show a measured budget in the context bar and the status bar."""
        self.query_one(ContextBar).budget = budget
        self.status_bar.used = budget.used
        self.status_bar.context = budget.context

    def show_sources(self, hits: list[Hit], cited: list[int]) -> None:
        """Fill the sources panel with the last answer's sources and show it."""
        self.last_hits = hits
        panel = self.query_one(SourcesPanel)
        panel.cited = cited
        panel.hits = hits
        panel.display = True

    def start_comparison(self, prompt: str) -> None:
        """Show ``prompt`` answered by the base model and by the adapter, side by side."""
        base_view = ChatMessageView("assistant", "…")
        adapter_view = ChatMessageView("assistant", "…")
        row = Horizontal(
            Vertical(Label(f"base: {self.config.model}", classes="compare-title"), base_view),
            Vertical(
                Label(f"adapter: {self.config.adapter}", classes="compare-title"), adapter_view
            ),
            classes="compare",
        )
        box = self.query_one("#messages", VerticalScroll)
        box.mount_all([ChatMessageView("note", f"**Compare:** {prompt}"), row])
        box.scroll_end(animate=False)
        self.comparing = True
        self.set_state("comparing…")
        self.compare(prompt, base_view, adapter_view)

    def comparison_done(self, error: str | None) -> None:
        """Both answers of /compare are written (or one failed)."""
        self.comparing = False
        self.set_state("error" if error else "ready")
        if error:
            self.notify(error, severity="error", timeout=10)
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    def add_note(self, markdown: str) -> ChatMessageView:
        """Show a note in the chat (help, memory): not stored, not sent to the model."""
        view = ChatMessageView("note", markdown)
        box = self.query_one("#messages", VerticalScroll)
        box.mount(view)
        box.scroll_end(animate=False)
        return view

    def help_text(self) -> str:
        """The ``/help`` text."""
        return help_markdown(self.keys.describe())

    # -- actions -----------------------------------------------------------------------

    def action_stop(self) -> None:
        """Stop the reply being generated (the partial text is kept, marked stopped)."""
        for worker in self.workers:
            if worker.group == "generate":
                worker.cancel()

    def action_new_conversation(self) -> None:
        """Start a new conversation."""
        self.show_conversation(None)
        self.prompt_box.focus()

    def action_toggle_sidebar(self) -> None:
        """Show or hide the conversations."""
        sidebar = self.query_one(ConversationList)
        sidebar.display = not sidebar.display

    def action_toggle_sources(self) -> None:
        """Show or hide the sources panel."""
        panel = self.query_one(SourcesPanel)
        panel.display = not panel.display

    def action_focus_prompt(self) -> None:
        """Put the cursor back in the prompt box."""
        self.prompt_box.focus()

    @on(SourcesPanel.Open)
    def _open_source(self, event: SourcesPanel.Open) -> None:
        from tui.opener import open_command

        command = open_command(event.hit)
        if command is None:
            self.notify(f"cannot open {event.hit.source}: no such file", severity="error")
            return
        import subprocess

        try:
            with self.suspend():
                subprocess.run(command, check=False)
        except Exception as exc:  # SuspendNotSupported (headless), a missing editor
            self.notify(
                f"cannot open an editor here ({type(exc).__name__}); run: {' '.join(command)}",
                severity="warning",
                timeout=10,
            )


def run_app(config: Config, conversation_id: str | None = None, **kwargs: Any) -> None:
    """Run the chat app in the terminal."""
    ChatApp(config, conversation_id=conversation_id, **kwargs).run()
