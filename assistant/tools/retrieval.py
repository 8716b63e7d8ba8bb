"""Document search and memory recall, as tools built around a search callable.

The document index and the memory store live elsewhere; whoever owns them passes a
``search(query, k)`` callable. Hits may be strings, mappings or objects with a text field
(``text``, ``content`` or ``page_content``) and optionally a ``source``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

SearchFn = Callable[[str, int], Sequence[Any]]


def hit_text(hit: Any) -> tuple[str, str | None]:
    """Return (text, source) of one hit in any of the accepted shapes."""
    if isinstance(hit, str):
        return hit, None

    def get(key: str) -> Any:
        return hit.get(key) if isinstance(hit, Mapping) else getattr(hit, key, None)

    text = next((get(k) for k in ("text", "content", "page_content") if get(k)), None)
    meta = get("metadata")
    source = get("source") or (meta.get("source") if isinstance(meta, Mapping) else None)
    return str(text if text is not None else hit), (str(source) if source else None)


def format_hits(hits: Sequence[Any], max_chars: int = 500) -> str:
    """Render hits as numbered lines the model reads as data."""
    if not hits:
        return "nothing found"
    lines = []
    for i, hit in enumerate(hits, 1):
        text, source = hit_text(hit)
        body = " ".join(text.split())[:max_chars]
        lines.append(f"[{i}] {body}" + (f" (source: {source})" if source else ""))
    return "\n".join(lines)


def make_search_tool(search: SearchFn, name: str, description: str, k: int = 3) -> BaseTool:
    """Wrap ``search`` as a one-argument LangChain tool called ``name``."""

    def run(query: str) -> str:
        return format_hits(search(query, k))

    return StructuredTool.from_function(
        run, name=name, description=description, metadata={"gbnf_input": "[^\\n]{1,80}"}
    )


def make_doc_search_tool(search: SearchFn, k: int = 3) -> BaseTool:
    """The ``search_documents`` tool over the user's indexed files."""
    return make_search_tool(
        search,
        "search_documents",
        "Search the user's own documents and notes. Input: what to look for.",
        k,
    )


def make_memory_recall_tool(recall: SearchFn, k: int = 3) -> BaseTool:
    """The ``recall_memory`` tool over remembered facts and past conversations."""
    return make_search_tool(
        recall,
        "recall_memory",
        "Recall facts about the user and past conversations. Input: what to recall.",
        k,
    )
