"""The shown conversation: its messages, agent steps, notes and comparisons, scrolled to the end.

The screen decides what is shown (attributes down); this widget only builds and updates
the views, and paces the re-rendering of a reply being streamed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label

from tui.live import LiveReply, StepRecord
from tui.widgets.agent_step import AgentStepView
from tui.widgets.message import STOPPED, ChatMessageView, cut_marker
from tui.widgets.thinking_fold import ThinkingFold

if TYPE_CHECKING:  # importing the memory package at startup would load sqlite_utils
    from assistant.memory.records import Message

# How often a streaming reply is re-shown (tokens are batched in between): 10 Hz reads
# as smooth text and keeps the UI's share of the GIL small.
FLUSH_INTERVAL_S = 0.1
# After a render that took t seconds, wait RENDER_BACKOFF * t before the next one, so
# rendering takes at most 1/(1 + RENDER_BACKOFF) of the time however long the reply grows.
RENDER_BACKOFF = 16
NO_REPLY = "*(no reply)*"


def step_view(record: StepRecord) -> AgentStepView:
    """A collapsed block for an agent step, linked to its record."""
    view = AgentStepView(record.index, record.tool, record.tool_input, record.thought)
    if record.observation is not None:
        view.observe(record.observation, record.error)
    record.view = view
    return view


def stored_views(messages: list[Message], live: LiveReply | None) -> list[Widget]:
    """Views of stored messages (and their agent steps), then of ``live`` if it is theirs."""
    last = messages[-1] if messages else None
    if live and last and last.role == "assistant" and last.status == "streaming":
        messages = messages[:-1]  # the live reply shows it instead
    views: list[Widget] = []
    for message in messages:
        if message.role not in ("user", "assistant"):
            continue
        stopped = message.role == "assistant" and message.status == "interrupted"
        text = message.content + (STOPPED if stopped else "")
        if message.role == "assistant" and message.finish_reason == "length" and not stopped:
            text += cut_marker(message.completion_tokens)
        view = ChatMessageView(message.role, text, message_id=message.id, model=message.model)
        if stopped:
            view.add_class("stopped")
        if message.reasoning:  # a reasoning model's <think> text, folded
            views.append(ThinkingFold(message.reasoning))
        views.append(view)
        for step in message.steps or []:
            if step.get("tool"):
                record = StepRecord(
                    step["index"],
                    step["tool"],
                    step.get("tool_input") or "",
                    step.get("thought") or "",
                    step.get("observation"),
                    bool(step.get("error")),
                )
                views.append(step_view(record))
    if live is not None:
        live.view = ChatMessageView("assistant", live.text or "…", model=live.model)
        live.shown = len(live.parts)
        if live.thinking:
            live.fold = ThinkingFold(live=live)
            views.append(live.fold)
        views.append(live.view)
        views += [step_view(record) for record in live.steps]
    return views


class Transcript(VerticalScroll):
    """The messages of the shown conversation."""

    def show(self, messages: list[Message], live: LiveReply | None) -> None:
        """Show a conversation's stored messages, and ``live`` if it is being written there."""
        self.remove_children()
        self.mount_all(stored_views(messages, live))
        self.scroll_end(animate=False)

    def start_turn(self, live: LiveReply) -> None:
        """Show the user's message and an empty reply that ``live`` will fill."""
        self.drop_failed_turn(live.prompt)
        live.view = ChatMessageView("assistant", "…", model=live.model)
        self.mount_all([ChatMessageView("user", live.prompt), live.view])
        self.scroll_end(animate=False)
        live.timer = self.set_interval(FLUSH_INTERVAL_S, lambda: self.show_live(live))

    def drop_failed_turn(self, text: str) -> None:
        """Sending again what just failed with no reply: the session answers the stored
        message (it does not store it twice), so the failed turn's views go too."""
        views = list(self.query_children(ChatMessageView))
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
        self.scroll_end(animate=False)

    def finish_live(
        self,
        live: LiveReply,
        *,
        stopped: bool,
        failed: bool,
        note: str | None = None,
        cut: int | None = None,
    ) -> None:
        """The turn ended: render its reply once, in full (marked if stopped or failed;
        ``note``, e.g. low confidence, in italics under it; ``cut``: the reply stopped at
        that many tokens, its max_tokens)."""
        if live.timer is not None:
            live.timer.stop()
        view = live.view
        if view is None:
            return
        if failed:
            view.set_text(live.text or NO_REPLY)
            view.add_class("error")
        else:
            marker = f"\n\n*[{note}]*" if note else ""
            if cut is not None and not stopped:
                marker += cut_marker(cut)
            view.finish_text(live.text + (STOPPED if stopped else "") + marker)
            view.set_class(stopped, "stopped")
            view.set_class(bool(note), "unsure")
        self.scroll_end(animate=False)

    def show_step(self, live: LiveReply, record: StepRecord) -> None:
        """Show a new or updated agent step under the reply."""
        if live.view is None:
            return
        if record.view is None:
            self.mount(step_view(record))
        elif record.observation is not None:
            record.view.observe(record.observation, record.error)

    def add_note(self, markdown: str) -> ChatMessageView:
        """Show a note (help, memory): not stored, not sent to the model."""
        view = ChatMessageView("note", markdown)
        self.mount(view)
        self.scroll_end(animate=False)
        return view

    def add_comparison(
        self, prompt: str, base: str, adapter: str
    ) -> tuple[ChatMessageView, ChatMessageView]:
        """Show ``prompt`` over two empty answers side by side; return the answers' views."""
        base_view = ChatMessageView("assistant", "…")
        adapter_view = ChatMessageView("assistant", "…")
        row = Horizontal(
            Vertical(Label(f"base: {base}", classes="compare-title"), base_view),
            Vertical(Label(f"adapter: {adapter}", classes="compare-title"), adapter_view),
            classes="compare",
        )
        self.mount_all([ChatMessageView("note", f"**Compare:** {prompt}"), row])
        self.scroll_end(animate=False)
        return base_view, adapter_view
