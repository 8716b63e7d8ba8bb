"""The chat screen: conversations sidebar, transcript, context bar, prompt box and status bar.

Every turn, in every mode, goes through the conversation's session
(``services.session(cid).send(text, services.responder(mode))``): :class:`~tui.turns.Turns`
starts it in a worker that only renders its events. Slash commands are a
:class:`~tui.slash.SlashCommands` working through this screen.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header

from assistant.backends.base import Backend
from assistant.config import Config
from tui import workers
from tui.commands import UnknownCommandError, parse_slash
from tui.compare import Comparison
from tui.conversations import Conversations
from tui.keys import APP_KEYS, KeyMap
from tui.live import LiveReply
from tui.palette import SlashPicked
from tui.slash import SlashCommands
from tui.turns import Turns
from tui.widgets.chat_widgets import ChatWidgets
from tui.widgets.context_bar import ContextBar
from tui.widgets.conversation_list import ConversationList
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar
from tui.widgets.transcript import Transcript
from tui.widgets.welcome import WelcomeNote
from tui.workers import BackendFactory, UiThread

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore
    from assistant.services import Services

T = TypeVar("T")


class ChatScreen(Screen[None]):
    """Chat with local models, with memory, tools and documents.

    Args:
        services: the backend, store, documents and tools (``services.backend`` is used
            once it is loaded here, in a worker).
        keys: the key bindings.
        conversation_id: the conversation to open (a prefix will do).
        backend: a backend to load at start instead of opening one for the config.
        backend_factory: builds a backend for a config (``/model``, ``/adapter``,
            ``/compare``'s base model); default: ``assistant.engine.open_backend``.
        ingest: ``(paths, progress) -> report`` (default: the document index's ingest).
        tool_names: the names of the agent's tools, when they were given.
    """

    BINDINGS = [
        Binding(APP_KEYS["stop"], "stop", "Stop reply", id="stop"),
        Binding(APP_KEYS["new"], "new_conversation", "New chat", id="new"),
        Binding(APP_KEYS["sidebar"], "toggle_sidebar", "Chats", id="sidebar"),
        Binding(APP_KEYS["sources_panel"], "toggle_sources", "Sources", id="sources_panel"),
        Binding(APP_KEYS["focus_prompt"], "focus_prompt", "Prompt", id="focus_prompt", show=False),
        Binding(
            APP_KEYS["documents_mode"],
            "toggle_documents",
            "Documents",
            id="documents_mode",
            show=False,
        ),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate"),
        Binding("alt+left", "version(-1)", "Older version of the last reply", show=False),
        Binding("alt+right", "version(1)", "Newer version of the last reply", show=False),
        Binding("alt+up", "version(-1, 'message')", "Older version of your message", show=False),
        Binding("alt+down", "version(1, 'message')", "Newer version of your message", show=False),
    ]

    def __init__(
        self,
        services: Services,
        *,
        keys: KeyMap,
        conversation_id: str | None = None,
        backend: Backend | None = None,
        backend_factory: BackendFactory | None = None,
        ingest: Callable[..., Any] | None = None,
        tool_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.services = services
        self.keys = keys
        self.backend_factory = backend_factory
        self.ingest_fn = ingest
        self.tool_names = tool_names
        self.ready = False  # the backend is loaded: sending waits until then
        self.store_open = False
        self._start_backend = backend
        self._open_at_start = conversation_id
        self.slash = SlashCommands(self)

    # -- layout and start --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield ConversationList(id="sidebar")
            with Vertical(id="chat"):
                yield Transcript(id="messages")
                yield ContextBar(id="context")
                yield PromptInput(
                    send_keys=self.keys.send,
                    newline_keys=self.keys.newline,
                    clear_keys=self.keys.clear,
                    id="prompt",
                )
                yield StatusBar(id="status")
            yield SourcesPanel(id="sources")
        yield Footer()

    def on_mount(self) -> None:
        self.ui = UiThread(self.app)
        widgets = ChatWidgets(
            self.transcript,
            self.prompt_box,
            self.status_bar,
            self.query_one(ContextBar),
            self.query_one(SourcesPanel),
            self.query_one(ConversationList),
        )
        self.conversations = Conversations(self, self.services, widgets)
        self.turns = Turns(self, self.services, self.ui, widgets)
        self.comparison = Comparison(self, self.services, self.ui, self.backend_factory, widgets)
        widgets.sources.display = False
        self.status_bar.model = self.config.model
        self.prompt_box.focus()
        self.start("store", workers.open_store, self.ui, self, self.services)
        self.load_model(self.config, self._start_backend)

    def start(
        self, group: str, work: Callable[..., None], *args: Any, exclusive: bool = True
    ) -> None:
        """Run ``work(*args)`` in a thread worker (``exclusive``: cancelling the one
        running in ``group``)."""
        self.run_worker(partial(work, *args), group=group, exclusive=exclusive, thread=True)

    @property
    def config(self) -> Config:
        """The settings (``/model`` and ``/adapter`` change them)."""
        return self.services.config

    @property
    def store(self) -> MemoryStore | None:
        """The memory store; None while it is opening."""
        return self.services.store if self.store_open else None

    @property
    def live(self) -> LiveReply | None:
        """The reply being written (perhaps in another conversation than the one shown)."""
        return self.turns.live

    @property
    def comparing(self) -> bool:
        """/compare is writing its two answers."""
        return self.comparison.running

    @property
    def prompt_box(self) -> PromptInput:
        """The prompt box."""
        return self.query_one("#prompt", PromptInput)

    @property
    def status_bar(self) -> StatusBar:
        """The status bar."""
        return self.query_one(StatusBar)

    @property
    def transcript(self) -> Transcript:
        """The shown conversation's messages."""
        return self.query_one(Transcript)

    def store_ready(self) -> None:
        """The memory store is open: list conversations and open the one asked for, else
        the last one (as a restart should), else welcome a new user."""
        self.store_open = True
        self.refresh_conversations()
        if self.store is None or self.conversation_id is not None:
            return
        if self._open_at_start:
            try:
                found = self.store.conversation(self._open_at_start)
            except Exception as exc:  # MemoryNotFoundError: say so, start a new one
                self.notify(str(exc), severity="error", timeout=10, markup=False)
            else:
                self.show_conversation(found.id)
            self._open_at_start = None
            return
        latest = self.store.conversations(limit=1)
        if latest:
            self.show_conversation(latest[0].id)
        else:
            self.show_welcome()

    def show_welcome(self) -> None:
        """Show the first-start note (the model, the mode, the keys to start with)."""
        from tui.widgets.welcome import WelcomeNote, welcome_markdown

        note = welcome_markdown(self.config.model, self.mode, self.keys)
        self.transcript.mount(WelcomeNote(note))

    def load_model(self, config: Config, backend: Backend | None = None) -> None:
        """Open and load the backend of ``config`` (or load ``backend``) in a worker."""
        factory = self.backend_factory
        self.start("load", workers.load_backend, self.ui, self, config, factory, backend)

    def backend_ready(self, config: Config, backend: Backend) -> Backend | None:
        """A (new) backend is loaded: answer with it from now on; return the one replaced."""
        old = self.services.backend if self.ready else None
        # The model is part of the configuration: the services go on with both.
        self.services.config = config
        self.services.backend = backend
        self.ready = True
        adapter = f" + {config.adapter}" if config.adapter else ""
        self.status_bar.model = backend.model_name + adapter
        self.status_bar.state = "ready"
        self.update_budget()
        return old

    def load_failed(self, config: Config, message: str) -> None:
        """A model did not load: say why; the one loaded before (if any) goes on answering."""
        if self.ready:
            self.status_bar.state = "ready"
            message += f" (still using {self.status_bar.model})"
        else:
            self.status_bar.state = "no model"
        self.notify(message, severity="error", timeout=10, markup=False)

    def set_state(self, text: str) -> None:
        """Set the state shown in the status bar."""
        self.status_bar.state = text

    def set_background(self, text: str) -> None:
        """Show (or, with "", clear) what runs in the background, after the state."""
        self.status_bar.background = text

    def ask(self, modal: Screen[T], callback: Callable[[T | None], None]) -> None:
        """Show a modal; ``callback`` gets what it dismisses with."""
        self.app.push_screen(modal, callback)

    # -- conversations -----------------------------------------------------------------

    @property
    def conversation_id(self) -> str | None:
        """The shown conversation (None: a new one, not stored yet)."""
        return self.conversations.current

    @property
    def mode(self) -> str:
        """How the shown conversation is answered: "chat", "documents" or "agent"."""
        return self.conversations.mode

    def refresh_conversations(self) -> None:
        """Fill the sidebar from the store, filtered by its search box."""
        self.conversations.refresh()

    def show_conversation(self, conversation_id: str | None) -> None:
        """Show a stored conversation in its mode (None: a new one, in chat mode), with
        nothing of the last one's status or sources."""
        self.conversations.show(conversation_id)
        self.slash.versions.mark_views()  # "version N/M" and ratings on the replies
        if self.ready and self.live is None:
            self.status_bar.state = "ready"  # not the last reply's "error" or "interrupted"
        self.turns.last_hits = []
        panel = self.query_one(SourcesPanel)
        panel.cited = []
        panel.hits = []

    def ensure_conversation(self) -> str:
        """The shown conversation's id, storing it (in the current mode) if it is new."""
        return self.conversations.ensure()

    def set_mode(self, mode: str) -> None:
        """Answer in ``mode`` from now on, stored with the conversation."""
        self.conversations.set_mode(mode)

    def set_title(self, conversation_id: str, title: str) -> None:
        """A conversation was renamed: show its title if it is the one shown."""
        self.conversations.retitled(conversation_id, title)

    @on(ConversationList.Selected)
    def _switch(self, event: ConversationList.Selected) -> None:
        if event.conversation_id != self.conversation_id:
            self.show_conversation(event.conversation_id)
        self.prompt_box.focus()

    @on(ConversationList.SearchChanged)
    def _search(self, event: ConversationList.SearchChanged) -> None:
        self.conversations.query = event.query
        self.conversations.refresh()

    @on(ConversationList.DeleteRequested)
    def _delete_requested(self, event: ConversationList.DeleteRequested) -> None:
        self.slash.conversation.delete_conversation(event.conversation_id)

    @on(ConversationList.RenameRequested)
    def _rename_requested(self, event: ConversationList.RenameRequested) -> None:
        self.slash.conversation.rename_conversation(event.conversation_id, "")

    # -- sending -----------------------------------------------------------------------

    @on(PromptInput.Submitted)
    def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if not text:
            return
        try:
            parsed = parse_slash(text)
        except UnknownCommandError as exc:
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            self.prompt_box.refused()  # kept to fix, selected: typing replaces it
            return
        if parsed is None:
            self.turns.send(text)
            if self.live is not None:  # sent: the welcome has done its job
                self.query(WelcomeNote).remove()
        elif self.slash.run(*parsed):
            self.prompt_box.remember(text)
            self.prompt_box.clear_text()
        elif self.prompt_box.text.strip() == text:  # refused, and not replaced by the command
            self.prompt_box.refused()

    @on(SlashPicked)
    def _picked(self, event: SlashPicked) -> None:
        self.slash.from_palette(event.command)

    # -- notes, documents, comparisons ------------------------------------------------

    def update_budget(self) -> None:
        """Re-count the context budget of the shown conversation, in a worker."""
        self.turns.update_budget()

    def add_note(self, markdown: str) -> object:
        """Show a note in the chat (help, memory): not stored, not sent to the model."""
        return self.transcript.add_note(markdown)

    def put_in_prompt(self, text: str) -> None:
        """Put ``text`` in the prompt box to be completed."""
        self.prompt_box.set_text(text)
        self.prompt_box.focus()

    def start_comparison(self, prompt: str) -> None:
        """Show ``prompt`` answered by the base model and by the adapter, side by side."""
        store, cid = self.store, self.conversation_id
        system = self.config.system_prompt
        if store is not None and cid is not None:
            system = store.conversation(cid).system_prompt
        self.comparison.start(prompt, system, cid)

    def prefer_compared(self, which: str) -> str:
        """Store the last comparison as a preference pair (``which`` answer chosen)."""
        return self.comparison.prefer(which)

    # -- actions -----------------------------------------------------------------------

    def exit_app(self) -> None:
        """Quit the app (a reply being written is stored as interrupted)."""
        self.app.exit()

    def help_text(self) -> str:
        """The /help note, made from the command table and the bindings of every widget
        on this screen (so a new key or command cannot be left out)."""
        from tui.help import help_markdown
        from tui.screens.confirm import ConfirmScreen
        from tui.screens.edit_text import EditTextScreen
        from tui.screens.pick import PickScreen

        widgets: dict[type, None] = {type(self): None}
        for node in self.walk_children():
            widgets.setdefault(type(node), None)
        for modal in (ConfirmScreen, EditTextScreen, PickScreen):  # the dialogs' keys
            widgets.setdefault(modal, None)
        return help_markdown(self.keys, widgets)

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

    def action_regenerate(self) -> None:
        """Write the last reply again (the old one is kept as a version)."""
        self.slash.versions.regen("")

    def action_version(self, delta: int, which: str = "reply") -> None:
        """Show the previous or next version of the last reply (or of your last message)."""
        self.slash.versions.step(delta, which)

    def action_toggle_documents(self) -> None:
        """Documents mode on or off (as /documents)."""
        self.slash.documents.documents("")

    def action_focus_prompt(self) -> None:
        """Put the cursor back in the prompt box."""
        self.prompt_box.focus()

    @on(SourcesPanel.Open)
    def _open_source(self, event: SourcesPanel.Open) -> None:
        from tui.opener import open_source

        problem = open_source(self.app, event.hit)
        if problem is not None:
            self.notify(problem[0], severity=problem[1], timeout=10, markup=False)
