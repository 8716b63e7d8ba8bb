"""The default tool set built from the configuration."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool
from sqlite_utils import Database

from assistant.config import Config
from assistant.paths import DataPaths
from assistant.tools.calculator import make_calculator_tool
from assistant.tools.clock import make_clock_tool
from assistant.tools.files import make_read_file_tool
from assistant.tools.retrieval import SearchFn, make_doc_search_tool, make_memory_recall_tool
from assistant.tools.web_search import JsonApiBackend, WebSearcher, ddgs_backend
from assistant.tools.web_search import make_web_search_tool as _web_tool

if TYPE_CHECKING:
    from assistant.tools.mcp import McpToolset


def read_dirs(config: Config) -> list[Path]:
    """The folders ``read_file`` may open, from ``agent_read_dirs``."""
    if not config.agent_read_dirs:
        return []
    return [Path(p).expanduser() for p in config.agent_read_dirs.split(os.pathsep) if p.strip()]


def web_searcher(config: Config) -> WebSearcher:
    """A searcher caching in ``$ASSISTANT_HOME/web_cache.db``; offline unless enabled."""
    config.home.mkdir(parents=True, exist_ok=True)
    backend = JsonApiBackend(config.web_search_url) if config.web_search_url else ddgs_backend
    return WebSearcher(
        backend,
        db=Database(DataPaths(config.home).web_cache),
        offline=not config.web_search,
        timeout_s=config.web_search_timeout_s,
    )


def default_tools(
    config: Config,
    *,
    doc_search: SearchFn | None = None,
    memory_recall: SearchFn | None = None,
) -> list[BaseTool]:
    """Calculator and clock always; the others when configured or given.

    Fewer tools make tool choice easier for small models, so a tool that could only say
    "unavailable" is left out: web search only when ``web_search`` is on, read_file only
    when ``agent_read_dirs`` names folders.
    """
    tools = [make_calculator_tool(), make_clock_tool()]
    if doc_search is not None:
        tools.append(make_doc_search_tool(doc_search))
    if memory_recall is not None:
        tools.append(make_memory_recall_tool(memory_recall))
    if config.web_search:
        tools.append(_web_tool(web_searcher(config)))
    folders = read_dirs(config)
    if folders:
        tools.append(make_read_file_tool(folders))
    return tools


def _lazy_doc_search(config: Config) -> SearchFn:
    """Search the user's document index, opening it (and the RAG stack) on the first call."""
    opened: list[Any] = []

    def search(query: str, k: int) -> list[Any]:
        if not opened:
            from assistant.rag import index_for

            opened.append(index_for(config))
        return list(opened[0].search(query, k))

    return search


def has_documents(config: Config) -> bool:
    """Whether documents were ingested (looks for the catalog file; imports nothing)."""
    return DataPaths(config.home).catalog.exists()


def assistant_tools(
    config: Config,
    *,
    doc_search: SearchFn | None = None,
    memory_recall: SearchFn | None = None,
) -> list[BaseTool]:
    """:func:`default_tools`, with document search wired to the user's index when one exists."""
    if doc_search is None and has_documents(config):
        doc_search = _lazy_doc_search(config)
    return default_tools(config, doc_search=doc_search, memory_recall=memory_recall)


def start_mcp(config: Config, taken: Sequence[str] = ()) -> McpToolset:
    """Start the MCP servers of ``config.mcp_servers`` and wrap their tools.

    A server that fails to start or times out is left out, its one-line reason in
    ``errors`` (a stdio server's own output goes to ``$ASSISTANT_HOME/logs/mcp-NAME.log``).
    ``taken``: the names of the other tools, so an MCP tool never shadows one.
    """
    from assistant.tools.mcp import McpToolset

    return McpToolset.start(config.mcp_servers, taken=taken, log_dir=config.home / "logs")
