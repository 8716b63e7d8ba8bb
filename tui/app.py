"""The chat app: builds the services once from the configuration and shows the chat screen.

Everything on screen is the :class:`~tui.screens.chat.ChatScreen`'s. Nothing heavy is
imported here, so the prompt accepts keys before the model or the memory database has
loaded (both open in workers).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding
from textual.theme import Theme

from assistant.backends.base import Backend
from assistant.config import Config
from assistant.services import Services
from tui.app_state import load_state, save_state
from tui.keys import APP_KEYS, parse_keymap
from tui.palette import SlashCommandProvider
from tui.screens.chat import ChatScreen
from tui.workers import BackendFactory

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore
    from assistant.rag.index import Hit

# The generating worker needs the GIL for every token: while the UI renders, a short switch
# interval hands it back within 1 ms instead of Python's default 5 ms.
SWITCH_INTERVAL_S = 0.001


class ChatApp(App[None]):
    """Chat with local models, with memory, tools and documents.

    Args:
        config: the settings.
        backend: a ready backend (tests); default: opened from ``config`` in a worker.
        store: the memory store (tests: ``MemoryStore.in_memory()``); default: opened from
            ``config`` in a worker.
        conversation_id: the conversation to open (a prefix will do).
        doc_search: ``query -> hits`` (default: the document index of ``config``).
        ingest: ``(paths, progress) -> report`` (default: the document index's ingest).
        tools: the agent's tools (default: those of ``config``).
        backend_factory: builds a backend for a config, used by ``/model`` and ``/adapter``
            (default: ``assistant.engine.open_backend``).
    """

    CSS_PATH = "app.tcss"
    TITLE = "assistant"
    COMMANDS = App.COMMANDS | {SlashCommandProvider}
    BINDINGS = [Binding(APP_KEYS["quit"], "quit", "Quit", id="quit", priority=True)]

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
        self.keys = parse_keymap(config.keybindings)
        tool_list = list(tools) if tools is not None else None
        self.services = Services(
            config, backend=backend, store=store, doc_search=doc_search, tools=tool_list
        )
        self._chat_screen = partial(
            ChatScreen,
            self.services,
            keys=self.keys,
            conversation_id=conversation_id,
            backend=backend,
            backend_factory=backend_factory,
            ingest=ingest,
            tool_names=[t.name for t in tool_list] if tool_list is not None else None,
        )
        self._chat: ChatScreen | None = None
        self._switch_interval = sys.getswitchinterval()

    @property
    def config(self) -> Config:
        """The settings in use (``/model`` and ``/adapter`` change them)."""
        return self.services.config

    @property
    def chat(self) -> ChatScreen:
        """The chat screen (there while the app runs)."""
        if self._chat is None:
            raise RuntimeError("the chat screen is made when the app starts")
        return self._chat

    def get_default_screen(self) -> ChatScreen:
        """The chat screen is the first (and bottom) screen. It is made here, as the app
        starts: a screen made before (outside the app's event loop) comes up empty."""
        self._chat = self._chat_screen()
        return self._chat

    def on_mount(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # restored from __init__'s reading on unmount
        self.set_keymap(self.keys.app)
        theme = load_state(self.config.home).get("theme")
        if isinstance(theme, str) and theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def _remember_theme(self, theme: Theme) -> None:
        """The palette's "Change theme" picked one: the next start uses it too."""
        try:
            save_state(self.config.home, theme=theme.name)
        except OSError as exc:  # a read-only home: the theme holds for this run only
            self.notify(f"cannot remember the theme: {exc}", severity="warning", markup=False)

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)


def run_app(config: Config, conversation_id: str | None = None, **kwargs: Any) -> None:
    """Run the chat app in the terminal."""
    ChatApp(config, conversation_id=conversation_id, **kwargs).run()
