"""The chat app: a conversation view, a prompt box and a status line."""

from __future__ import annotations

import time
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Static
from textual.worker import get_current_worker

from assistant.backends.base import Backend, ChatMessage, Done, GenerationOptions, Token
from assistant.config import Config
from assistant.errors import AssistantError
from tui.widgets.message import ChatMessageView

FLUSH_INTERVAL_S = 0.05


class ChatApp(App[None]):
    """Chat with the configured model."""

    CSS_PATH = "app.tcss"
    TITLE = "assistant"
    BINDINGS = [
        Binding("escape", "stop", "Stop reply"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, config: Config, backend: Backend | None = None) -> None:
        super().__init__()
        self.config = config
        self.backend: Backend | None = backend
        self.history: list[ChatMessage] = []
        if config.system_prompt:
            self.history.append({"role": "system", "content": config.system_prompt})
        self.generating = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield VerticalScroll(id="messages")
        with Vertical(id="bottom"):
            yield Input(placeholder="Ask anything (Enter sends, Esc stops)", id="prompt")
            yield Static("loading model…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()
        self.load_model()

    @work(thread=True, exclusive=True, group="load")
    def load_model(self) -> None:
        """Open and load the backend off the UI thread."""
        try:
            if self.backend is None:
                from assistant.engine import open_backend

                self.backend = open_backend(self.config)
            load = getattr(self.backend, "load", None)
            if load is not None:
                load()
        except AssistantError as exc:
            self.call_from_thread(self._set_status, f"model failed to load: {exc}")
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        self.call_from_thread(self._set_status, f"{self.backend.model_name} ready")

    def _set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    @on(Input.Submitted, "#prompt")
    def send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.generating:
            return
        if self.backend is None:
            self.notify("the model is still loading", severity="warning")
            return
        event.input.value = ""
        self.history.append({"role": "user", "content": text})
        messages = self.query_one("#messages", VerticalScroll)
        messages.mount(ChatMessageView("user", text))
        reply = ChatMessageView("assistant", "…")
        messages.mount(reply)
        messages.scroll_end(animate=False)
        self.generating = True
        self.generate(reply, text)

    @work(thread=True, exclusive=True, group="generate")
    def generate(self, view: ChatMessageView, prompt: str) -> None:
        """Stream a reply into ``view``, re-rendering at most every FLUSH_INTERVAL_S."""
        worker = get_current_worker()
        assert self.backend is not None
        parts: list[str] = []
        done: Done | None = None
        last_flush = time.monotonic()
        stream = self.backend.stream(
            list(self.history), GenerationOptions(conversation_id="default")
        )
        try:
            for event in stream:
                if worker.is_cancelled:
                    break
                if isinstance(event, Token):
                    parts.append(event.text)
                    if time.monotonic() - last_flush >= FLUSH_INTERVAL_S:
                        self.call_from_thread(view.set_text, "".join(parts))
                        last_flush = time.monotonic()
                else:
                    done = event
        except AssistantError as exc:
            self.call_from_thread(self._finish, view, "".join(parts), None, str(exc), prompt)
            return
        finally:
            stream.close()
        self.call_from_thread(self._finish, view, "".join(parts), done, None, prompt)

    def _finish(
        self, view: ChatMessageView, text: str, done: Done | None, error: str | None, prompt: str
    ) -> None:
        self.generating = False
        if error:
            view.set_text(text or "*(no reply)*")
            view.add_class("error")
            self.notify(error, severity="error", timeout=10)
            self.history.pop()
            box = self.query_one("#prompt", Input)
            if not box.value:  # give the user their text back to edit and resend
                box.value = prompt
            return
        stopped = done is None
        view.set_text(text + ("\n\n*[stopped]*" if stopped else ""))
        self.history.append({"role": "assistant", "content": text})
        if done is not None:
            self._set_status(
                f"{self.backend.model_name if self.backend else ''} · "
                f"{done.timings.tokens_per_s:.1f} tok/s · "
                f"{done.usage.prompt_tokens + done.usage.completion_tokens} tokens in context"
            )
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    def action_stop(self) -> None:
        """Stop the reply being generated (the partial text is kept)."""
        for worker in self.workers:
            if worker.group == "generate":
                worker.cancel()


def run_app(config: Config, conversation_id: str | None = None, **kwargs: Any) -> None:
    """Run the chat app in the terminal."""
    ChatApp(config).run()
