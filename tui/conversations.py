"""Conversations of the app: listing, creating and showing them (methods of ChatApp)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import VerticalScroll

from tui.live import StepRecord
from tui.widgets.agent_step import AgentStepView
from tui.widgets.conversation_list import ConversationList
from tui.widgets.message import STOPPED, ChatMessageView

if TYPE_CHECKING:
    from tui.app import ChatApp


class ConversationsMixin:
    """The sidebar's data and the chat view's contents, read from the memory store."""

    def refresh_conversations(self: ChatApp) -> None:
        """Fill the sidebar from the store, filtered by the search box."""
        if self.store is None:
            return
        conversations = self.store.conversations()
        query = self.search_query.strip()
        if query:
            hits = {h.conversation_id for h in self.store.search_messages(query, 50)}
            conversations = [
                c for c in conversations if query.lower() in c.title.lower() or c.id in hits
            ]
        sidebar = self.query_one(ConversationList)
        sidebar.live = self.live.conversation_id if self.live else None
        sidebar.conversations = conversations
        sidebar.current = self.conversation_id

    def ensure_conversation(self: ChatApp) -> str:
        """The shown conversation's id, creating it in the store if it is new."""
        assert self.store is not None
        if self.conversation_id is None:
            from assistant.memory.strategies import StrategySpec

            conversation = self.store.create_conversation(
                strategy=str(StrategySpec.parse(self.config.memory_strategy)),
                system_prompt=self.config.system_prompt,
                model=self.backend.model_name if self.backend else self.config.model,
                adapter=self.config.adapter,
            )
            self.conversation_id = conversation.id
            self.refresh_conversations()
            return conversation.id
        return self.conversation_id

    def show_conversation(self: ChatApp, conversation_id: str | None) -> None:
        """Show a stored conversation (None: a new one). A reply still being written
        elsewhere keeps going and is shown again on coming back."""
        if self.live is not None:
            self.live.view = None
            for step in self.live.steps:
                step.view = None
        self.conversation_id = conversation_id
        box = self.query_one("#messages", VerticalScroll)
        box.remove_children()
        views: list[Any] = []
        title = ""
        if conversation_id is not None and self.store is not None:
            title = self.store.conversation(conversation_id).title
            stored = self.store.messages(conversation_id)
            live = self.live if self.live and self.live.conversation_id == conversation_id else None
            if (
                live
                and stored
                and stored[-1].role == "assistant"
                and stored[-1].status == "streaming"
            ):
                stored = stored[:-1]
            for message in stored:
                if message.role not in ("user", "assistant"):
                    continue
                stopped = message.role == "assistant" and message.status == "interrupted"
                view = ChatMessageView(
                    message.role,
                    message.content + (STOPPED if stopped else ""),
                    message_id=message.id,
                )
                if stopped:
                    view.add_class("stopped")
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
                        views.append(self._step_view(record))
            if live is not None:
                live.view = ChatMessageView("assistant", live.text or "…")
                live.shown = len(live.parts)
                views.append(live.view)
                for record in live.steps:
                    views.append(self._step_view(record))
        box.mount_all(views)
        box.scroll_end(animate=False)
        self.sub_title = title
        self.query_one(ConversationList).current = conversation_id
        self.update_budget()

    def _step_view(self: ChatApp, record: StepRecord) -> AgentStepView:
        view = AgentStepView(record.index, record.tool, record.tool_input, record.thought)
        if record.observation is not None:
            view.observe(record.observation, record.error)
        record.view = view
        return view
