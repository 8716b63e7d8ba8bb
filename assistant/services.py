"""What a front end needs, built once from a :class:`~assistant.config.Config`.

The CLI and the app build one :class:`Services` at their edge and pass it down: the data
paths, the generation options, and — opened on first use, then kept — the backend, the
memory store, the document index and the responders of each mode. Library code takes
these as arguments and never loads the configuration itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from assistant.backends.base import Backend, GenerationOptions
from assistant.config import Config
from assistant.errors import ConfigError
from assistant.paths import DataPaths
from assistant.responders import MODES, ChatResponder, Responder

if TYPE_CHECKING:
    from assistant.memory.conversation_settings import ConversationSettings
    from assistant.memory.session import ChatSession
    from assistant.memory.store import MemoryStore
    from assistant.rag.index import DocumentIndex, Hit
    from assistant.tools.mcp import McpToolset

Approve = Callable[[str, str], bool]


def generation_options(
    config: Config,
    conversation_id: str | None = None,
    settings: ConversationSettings | None = None,
) -> GenerationOptions:
    """The sampling settings of ``config`` (the one place they are read), with what a
    conversation's own ``settings`` set in their place."""
    options = GenerationOptions(
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        seed=config.seed,
        conversation_id=conversation_id,
    )
    return settings.apply(options) if settings is not None else options


class Services:
    """The backend, store, index and responders of one configuration, each built once."""

    def __init__(
        self,
        config: Config,
        *,
        backend: Backend | None = None,
        store: MemoryStore | None = None,
        doc_search: Callable[[str], list[Hit]] | None = None,
        tools: list[Any] | None = None,
    ) -> None:
        self.config = config
        self.paths = DataPaths(config.home)
        self._backend = backend
        self._store = store
        self._index: DocumentIndex | None = None
        self._doc_search = doc_search
        self._tools = tools
        self._mcp: McpToolset | None = None

    # -- parts, opened on first use ----------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The model backend (opened, not yet loaded, on first use)."""
        if self._backend is None:
            from assistant.engine import open_backend

            self._backend = open_backend(self.config)
        return self._backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        self._backend = backend

    @property
    def store(self) -> MemoryStore:
        """The memory database."""
        if self._store is None:
            from assistant.memory.store import MemoryStore

            self._store = MemoryStore.open(self.paths.memory_db)
        return self._store

    @property
    def index(self) -> DocumentIndex:
        """The document index."""
        if self._index is None:
            from assistant.rag import index_for

            self._index = index_for(self.config)
        return self._index

    def reopen_index(self) -> None:
        """Serve what the index's pointer names now (after `train embeddings` switched it):
        the next search opens the index again; searches already running finish on the old
        one."""
        self._index = None

    def has_documents(self) -> bool:
        """Whether documents were ingested (or a search was given)."""
        return self._doc_search is not None or self.paths.catalog.exists()

    def search_documents(self, query: str, k: int | None = None) -> list[Hit]:
        """The best chunks of the user's documents for ``query``."""
        k = k or self.config.rag_top_k
        if self._doc_search is not None:
            return self._doc_search(query)[:k]
        if not self.paths.catalog.exists():  # nothing ingested: no index to create
            return []
        return self.index.search(query, k)

    def options(self, conversation_id: str | None = None) -> GenerationOptions:
        """The configured generation options."""
        return generation_options(self.config, conversation_id)

    # -- turns -------------------------------------------------------------------------

    def session(
        self,
        conversation_id: str | None = None,
        *,
        strategy: str | None = None,
        store: MemoryStore | None = None,
        flush_interval_s: float | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> ChatSession:
        """Resume ``conversation_id`` (or start one) with the configured memory settings,
        sampling with the conversation's stored settings (and ``overrides`` over them)."""
        from assistant.memory.factory import open_session

        extra = {} if flush_interval_s is None else {"flush_interval_s": flush_interval_s}
        return open_session(
            self.config,
            store or self.store,
            self.backend,
            conversation_id=conversation_id,
            strategy=strategy,
            overrides=overrides,
            **extra,
        )

    def tools(self, *, with_memory: bool = True) -> list[Any]:
        """The agent's tools: documents and memory search wired to this configuration."""
        if self._tools is not None:
            return self._tools
        from assistant.tools.toolset import default_tools

        doc_search = None
        if self.has_documents():

            def doc_search(query: str, k: int) -> list[Any]:
                return self.search_documents(query, k)

        recall = None
        if with_memory and (self._store is not None or self.paths.memory_db.exists()):
            recall = self.store.recall
        tools = default_tools(self.config, doc_search=doc_search, memory_recall=recall)
        # The MCP tools are named once, against the built-ins of the first call; a built-in
        # that appears later (documents after an ingest) keeps its name over theirs.
        builtin = {t.name for t in tools}
        remote = [t for t in self.mcp(sorted(builtin)).tools if t.name not in builtin]
        return [*tools, *remote]

    def mcp(self, taken: list[str] | None = None) -> McpToolset:
        """The configured MCP servers' tools, started on first use and then kept; a server
        that failed is in ``errors`` (and logged), the others work."""
        if self._mcp is None:
            from assistant.tools.toolset import start_mcp

            self._mcp = start_mcp(self.config, taken or [])
        return self._mcp

    def responder(self, mode: str, *, approve: Approve | None = None) -> Responder:
        """The responder answering turns in ``mode``."""
        if mode == "chat":
            return ChatResponder(self.backend)
        if mode == "documents":
            from assistant.rag.responder import DocumentsResponder

            encode = None
            if self._doc_search is None and self.config.rag_attribute_citations:
                # Opened only when an answer has sources to rank or attribute: a documents
                # turn with nothing ingested must not load the embedder (seconds) to say so.
                def encode(texts: list[str]) -> Any:
                    return self.index.embedder.encode(texts)

            return DocumentsResponder(
                self.backend,
                self.search_documents,
                min_similarity=self.config.rag_min_similarity,
                encode=encode,
                answer_mode=self.config.rag_answer_mode,
            )
        if mode == "agent":
            from assistant.agent.responder import AgentResponder

            return AgentResponder(
                self.backend,
                self.tools(),
                max_steps=self.config.agent_max_steps,
                approve=approve,
            )
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
