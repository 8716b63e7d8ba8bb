"""The app's thread workers: loading, generating (chat, agent, documents), ingesting, counting.

Each runs off the UI thread, imports its heavy libraries itself and checks ``is_cancelled``
between events. Streamed tokens only go into ``LiveReply.parts``; a UI timer shows them
every ``FLUSH_INTERVAL_S`` and the reply is rendered in full once at the end. Other updates
reach the UI through ``call_from_thread``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from textual import work
from textual.worker import get_current_worker

from assistant.backends.base import Backend, ChatMessage, Done, GenerationOptions, Token
from assistant.config import Config
from assistant.errors import AssistantError
from tui.budget import Budget, measure
from tui.live import LiveReply, StepRecord

if TYPE_CHECKING:
    from tui.app import ChatApp


class WorkersMixin:
    """Workers of :class:`~tui.app.ChatApp` (kept apart to keep modules small)."""

    # -- helpers -----------------------------------------------------------------------

    def _ui(self: ChatApp, callback: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``callback`` on the UI thread; quietly nothing if the app is closing."""
        try:
            return self.call_from_thread(callback, *args, **kwargs)
        except RuntimeError:
            return None

    def _token(self: ChatApp, live: LiveReply, text: str) -> None:
        # The UI shows the parts on its own timer (ChatApp.show_live), so the worker never
        # waits for a render: generation runs at the backend's pace.
        live.parts.append(text)

    def _options(self: ChatApp, conversation_id: str) -> GenerationOptions:
        return GenerationOptions(
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            seed=self.config.seed,
            conversation_id=conversation_id,
        )

    # -- start -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="store")
    def open_store(self: ChatApp) -> None:
        """Open the memory database (sqlite_utils is imported here, not at startup)."""
        from assistant.memory.factory import open_store

        try:
            self.store = open_store(self.config)
        except Exception as exc:  # a locked or corrupt database: say what happened
            self._ui(self.notify, f"cannot open the memory database: {exc}", severity="error")
            return
        self._ui(self.store_ready)

    @work(thread=True, exclusive=True, group="load")
    def load_backend(self: ChatApp, config: Config, backend: Backend | None = None) -> None:
        """Open and load a backend for ``config`` (or load ``backend``) off the UI thread."""
        self._ui(self.set_state, f"loading {config.model}…")
        try:
            backend = self._open_loaded(config, backend)
        except AssistantError as exc:
            self._ui(self.set_state, "no model")
            self._ui(self.notify, str(exc), severity="error", timeout=10)
            return
        old = self.backend
        self._ui(self.backend_ready, config, backend)
        if old is not None and old is not backend:
            close = getattr(old, "close", None)
            if close is not None:
                close()

    def _open_loaded(self: ChatApp, config: Config, backend: Backend | None = None) -> Backend:
        """Open a backend for ``config`` (unless given) and load it (off the UI thread)."""
        if backend is None:
            factory = self.backend_factory
            if factory is None:
                from assistant.engine import open_backend as factory
            backend = factory(config)
        load = getattr(backend, "load", None)
        if load is not None:
            load()
        return backend

    # -- generating --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="generate")
    def generate_chat(self: ChatApp, live: LiveReply) -> None:
        """Send through the conversation's ChatSession (memory, persistence, KV cache)."""
        from assistant.memory.factory import open_session

        worker = get_current_worker()
        assert self.store is not None and self.backend is not None
        done: Done | None = None
        error: str | None = None
        try:
            session = open_session(
                self.config, self.store, self.backend, conversation_id=live.conversation_id
            )
            stream = session.send(live.prompt)
            try:
                for event in stream:
                    # The session has stored this token already: show it, then stop.
                    if isinstance(event, Token):
                        self._token(live, event.text)
                    else:
                        done = event
                    if worker.is_cancelled:
                        break
            finally:
                stream.close()  # the session stores the partial reply as interrupted
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:  # a bug or a broken file must not close the app
            error = f"{type(exc).__name__}: {exc}"
        stopped = error is None and (done is None or done.finish_reason == "cancelled")
        self._finish(live, stopped=stopped, error=error, done=done)

    def _finish(self: ChatApp, live: LiveReply, **kwargs: Any) -> None:
        budget = None
        try:
            budget = self.measure_budget(live.conversation_id)
        except Exception:  # counting is informative only; never lose the reply over it
            budget = None
        self._ui(self.finish_live, live, budget=budget, **kwargs)

    @work(thread=True, exclusive=True, group="generate")
    def generate_agent(self: ChatApp, live: LiveReply) -> None:
        """Answer with the ReAct agent, showing each step; risky tools ask first."""
        from assistant.agent import AgentResult, FinalToken, Observed, ReActAgent, ToolCalled
        from assistant.memory.session import prompt_history

        worker = get_current_worker()
        assert self.store is not None and self.backend is not None
        store, cid = self.store, live.conversation_id
        result: AgentResult | None = None
        error: str | None = None
        try:
            history = prompt_history(store.messages(cid))
            store.add_message(cid, "user", live.prompt)
            if not store.conversation(cid).title:
                store.update_conversation(cid, title=live.prompt[:60])
            tools = self.tools
            if tools is None:
                from assistant.tools.toolset import assistant_tools

                injected = self.doc_search  # query -> hits (tests); the tool takes (query, k)
                tools = assistant_tools(
                    self.config,
                    doc_search=(lambda q, k: injected(q)[:k]) if injected else None,
                    memory_recall=store.recall,
                )
            agent = ReActAgent(
                self.backend,
                tools,
                max_steps=self.config.agent_max_steps,
                approve=self._approve,
                temperature=0.0,
                conversation_id=f"{cid}:agent",  # its prompts differ from the chat's
            )
            records: dict[int, StepRecord] = {}
            for event in agent.run(live.prompt, history):
                if worker.is_cancelled:
                    break
                if isinstance(event, ToolCalled):
                    record = StepRecord(event.index, event.tool, event.tool_input, event.thought)
                    records[event.index] = record
                    live.steps.append(record)
                    self._ui(self.show_step, live, record)
                elif isinstance(event, Observed) and event.index in records:
                    record = records[event.index]
                    record.observation, record.error = event.text, event.error
                    self._ui(self.show_step, live, record)
                elif isinstance(event, FinalToken):
                    self._token(live, event.text)
                elif isinstance(event, AgentResult):
                    result = event
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:  # a bug or a broken file must not close the app
            error = f"{type(exc).__name__}: {exc}"
        if result is not None:
            live.parts[:] = [result.answer]
        store.add_message(
            cid,
            "assistant",
            live.text,
            status="complete" if result else "interrupted",
            steps=[dataclasses.asdict(s) for s in result.steps] if result else None,
            model=self.backend.model_name,
        )
        self._finish(live, stopped=result is None and error is None, error=error)

    def _approve(self: ChatApp, tool: str, tool_input: str) -> bool:
        """Ask in a modal (from the worker thread) whether a risky tool may run."""
        from tui.screens.confirm import ConfirmScreen

        worker = get_current_worker()
        answered = threading.Event()
        answer: list[bool] = []

        def ask() -> None:
            def done(value: bool | None) -> None:
                answer.append(bool(value))
                answered.set()

            question = f"Let the assistant run the risky tool {tool}({tool_input!r})?"
            self.push_screen(ConfirmScreen(question, yes="Run it", no="Refuse"), done)

        self._ui(ask)
        while not answered.wait(0.1):
            if worker.is_cancelled:
                return False
        return answer[0]

    @work(thread=True, exclusive=True, group="generate")
    def generate_documents(self: ChatApp, live: LiveReply) -> None:
        """Answer from the user's documents with numbered sources."""
        from assistant.rag.answer import (
            NOTHING_FOUND,
            citation_stream,
            citations,
            relevant,
            stream_answer,
        )

        worker = get_current_worker()
        assert self.store is not None and self.backend is not None
        store, cid = self.store, live.conversation_id
        done: Done | None = None
        error: str | None = None
        kept: list[Any] = []
        store.add_message(cid, "user", live.prompt)
        if not store.conversation(cid).title:
            store.update_conversation(cid, title=live.prompt[:60])
        try:
            search = self.doc_search
            encode = None
            if search is None:
                from assistant.rag import index_for

                index = index_for(self.config)
                if self.config.rag_attribute_citations:
                    encode = index.embedder.encode

                def search(query: str) -> list[Any]:
                    return index.search(query, self.config.rag_top_k)

            kept = relevant(search(live.prompt), self.config.rag_min_similarity)
            if not kept:
                live.parts[:] = [NOTHING_FOUND]
            else:
                options = self._options(f"{cid}:documents")
                citer = citation_stream(encode, kept)
                for event in stream_answer(self.backend, live.prompt, kept, options, citer):
                    if worker.is_cancelled:
                        break
                    if isinstance(event, Token):
                        self._token(live, event.text)
                    else:
                        done = event
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:  # a bug or a broken file must not close the app
            error = f"{type(exc).__name__}: {exc}"
        stopped = error is None and bool(kept) and done is None
        store.add_message(
            cid,
            "assistant",
            live.text,
            status="interrupted" if stopped else "complete",
            model=self.backend.model_name,
        )
        self._ui(self.show_sources, kept, citations(live.text, len(kept)))
        self._finish(live, stopped=stopped, error=error, done=done)

    # -- documents ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="ingest")
    def ingest_path(self: ChatApp, path: str) -> None:
        """Ingest files into the document index, with progress in the status bar."""
        ingest = self.ingest_fn
        if ingest is None:
            from assistant.rag import index_for

            ingest = index_for(self.config).ingest

        def progress(event: Any) -> None:
            name = event.status.path.rsplit("/", 1)[-1]
            self._ui(self.set_state, f"ingesting {event.done}/{event.total}: {name}")

        self._ui(self.set_state, f"ingesting {path}…")
        try:
            report = ingest([path], progress)
        except Exception as exc:  # a missing path, an unreadable file, the embedder
            self._ui(self.set_state, "ready")
            self._ui(self.notify, f"ingest failed: {exc}", severity="error", timeout=10)
            return
        summary = (
            f"ingested {len(report.indexed)} files ({report.chunks} chunks); "
            f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped, "
            f"{len(report.failed)} failed"
        )
        self._ui(self.set_state, "ready")
        self._ui(self.notify, summary, timeout=8)

    # -- comparing ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="compare")
    def compare(self: ChatApp, prompt: str, base_view: Any, adapter_view: Any) -> None:
        """Answer ``prompt`` with the base model, then with the adapter (same settings, seed).

        The base model is a second backend, loaded on first use and kept for later
        comparisons; neither answer is stored in the conversation.
        """
        error: str | None = None
        try:
            adapter = self.backend
            assert adapter is not None
            base = self.comparison_base()
            system = self.config.system_prompt
            if self.store is not None and self.conversation_id is not None:
                system = self.store.conversation(self.conversation_id).system_prompt
            messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
            options = GenerationOptions(
                max_tokens=self.config.max_tokens,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
                seed=self.config.seed if self.config.seed is not None else 0,
                conversation_id="compare",
            )
            for backend, view in ((base, base_view), (adapter, adapter_view)):
                parts: list[str] = []
                shown = time.monotonic()
                done: Done | None = None
                for event in backend.stream(messages, options):
                    if isinstance(event, Token):
                        parts.append(event.text)
                        if time.monotonic() - shown > 0.2:
                            self._ui(view.set_text, "".join(parts))
                            shown = time.monotonic()
                    else:
                        done = event
                speed = f"\n\n*{done.timings.tokens_per_s:.1f} tok/s*" if done else ""
                self._ui(view.set_text, "".join(parts).strip() + speed)
        except AssistantError as exc:
            error = str(exc)
        except Exception as exc:  # a bug or a broken file must not close the app
            error = f"{type(exc).__name__}: {exc}"
        self._ui(self.comparison_done, error)

    def comparison_base(self: ChatApp) -> Backend:
        """The base model of the current adapter, loaded once (for /compare)."""
        key = (self.config.model, self.config.backend)
        if self.comparison_backend is not None:
            if self.comparison_backend[0] == key:
                return self.comparison_backend[1]
            close = getattr(self.comparison_backend[1], "close", None)
            if close is not None:  # the model changed: free the old base
                close()
            self.comparison_backend = None
        backend = self._open_loaded(dataclasses.replace(self.config, adapter=None))
        self.comparison_backend = (key, backend)
        return backend

    # -- counting ----------------------------------------------------------------------

    def measure_budget(self: ChatApp, conversation_id: str | None) -> Budget | None:
        """Count the next prompt's parts for a conversation (call off the UI thread)."""
        backend = self.backend
        if backend is None:
            return None
        reserve = min(self.config.max_tokens, backend.context_length // 2)
        documents = [h.text for h in self.last_hits] if self.mode == "documents" else []
        if conversation_id is None or self.store is None:
            return measure(
                backend, system=self.config.system_prompt, documents=documents, reserve=reserve
            )
        from assistant.memory.session import prompt_history
        from assistant.memory.strategies import StrategySpec

        store = self.store
        conversation = store.conversation(conversation_id)
        messages = store.messages(conversation_id, conversation.prompt_start_seq)
        memory: list[str] = []
        if StrategySpec.parse(conversation.strategy).uses_summary:
            summary = store.latest_summary(conversation_id)
            if summary is not None:
                memory.append(summary.content)
        if messages:
            memory += [f["content"] for f in messages[-1].memory.get("facts", [])]
        return measure(
            backend,
            system=conversation.system_prompt,
            memory=memory,
            documents=documents,
            history=prompt_history(messages),
            reserve=reserve,
        )

    @work(thread=True, exclusive=True, group="budget")
    def update_budget(self: ChatApp) -> None:
        """Re-count the context budget of the shown conversation."""
        try:
            budget = self.measure_budget(self.conversation_id)
        except Exception:  # e.g. the conversation was just deleted
            return
        if budget is not None:
            self._ui(self.show_budget, budget)
