"""Web search with a SQLite result cache, a timeout, back-off on rate limits and an offline mode.

The searcher takes its backend as a callable, so ddgs (DuckDuckGo and friends), a SearxNG
instance's JSON API or a test fixture server can stand behind the same tool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool
from sqlite_utils import Database, Migrations

from assistant.tools.retrieval import one_line, quote_data

UNAVAILABLE = "web search unavailable (offline mode); answer from what you know or other tools"


@dataclass(frozen=True)
class SearchResult:
    """One hit: title, address and a short text."""

    title: str
    url: str
    snippet: str


class SearchFailed(Exception):
    """The backend could not answer (network error, bad reply)."""


class RateLimited(SearchFailed):
    """The backend asked us to slow down; the searcher backs off and retries."""


class SearchTimedOut(SearchFailed):
    """The backend did not answer within the timeout."""


SearchBackend = Callable[[str, int, float], Sequence[SearchResult]]
"""(query, max_results, timeout_s) -> results; raises SearchFailed and its subclasses."""


def ddgs_backend(query: str, max_results: int, timeout_s: float) -> list[SearchResult]:
    """Search with the ``ddgs`` metasearch library (needs the internet)."""
    from ddgs import DDGS
    from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

    try:
        rows = DDGS(timeout=max(1, round(timeout_s))).text(query, max_results=max_results)
    except RatelimitException as exc:
        raise RateLimited(str(exc)) from exc
    except TimeoutException as exc:
        raise SearchTimedOut(str(exc)) from exc
    except DDGSException as exc:
        raise SearchFailed(str(exc)) from exc
    return [
        SearchResult(str(r.get("title", "")), str(r.get("href", "")), str(r.get("body", "")))
        for r in rows
    ]


class JsonApiBackend:
    """A SearxNG-style JSON endpoint: ``GET url?q=QUERY&format=json`` returning ``results``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, query: str, max_results: int, timeout_s: float) -> list[SearchResult]:
        """Query the endpoint; 429 becomes RateLimited, a slow answer SearchTimedOut."""
        try:
            reply = httpx.get(self.url, params={"q": query, "format": "json"}, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise SearchTimedOut(f"no answer from {self.url} within {timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise SearchFailed(f"cannot reach {self.url}: {exc}") from exc
        if reply.status_code == 429:
            raise RateLimited(f"{self.url} is rate limiting")
        if reply.status_code != 200:
            raise SearchFailed(f"{self.url} answered HTTP {reply.status_code}")
        try:
            rows = reply.json()["results"]
            return [
                SearchResult(
                    str(r.get("title", "")),
                    str(r.get("url", "")),
                    str(r.get("content", r.get("snippet", ""))),
                )
                for r in rows[:max_results]
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SearchFailed(f"{self.url} sent a reply that is not search results") from exc


_migrations = Migrations("assistant.web_search")


@_migrations()
def m001_cache(db: Database) -> None:
    """Create the result cache table."""
    db.table("web_cache").create(
        {"query": str, "results": str, "fetched_at": float}, pk="query", if_not_exists=True
    )


class WebSearcher:
    """Searches through a backend, with caching, retries with back-off and an offline switch."""

    def __init__(
        self,
        backend: SearchBackend = ddgs_backend,
        *,
        db: Database | None = None,
        offline: bool = False,
        timeout_s: float = 10.0,
        max_results: int = 5,
        retries: int = 2,
        backoff_s: float = 2.0,
        cache_ttl_s: float = 7 * 24 * 3600,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.db = db
        self.offline = offline
        self.timeout_s = timeout_s
        self.max_results = max_results
        self.retries = retries
        self.backoff_s = backoff_s
        self.cache_ttl_s = cache_ttl_s
        self._sleep = sleep
        self._clock = clock
        if db is not None:
            _migrations.apply(db)

    def search(self, query: str) -> list[SearchResult]:
        """Return results for ``query``: from the cache when fresh, else from the backend.

        Raises:
            SearchFailed: offline mode is on with nothing cached, or every attempt failed.
        """
        key = " ".join(query.lower().split())
        cached = self._cached(key)
        if cached is not None:
            return cached
        if self.offline:
            raise SearchFailed(UNAVAILABLE)
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                results = list(self.backend(query, self.max_results, self.timeout_s))
                break
            except RateLimited:
                if attempt == self.retries:
                    raise
                self._sleep(delay)
                delay *= 2
        self._store(key, results)
        return results

    def _cached(self, key: str) -> list[SearchResult] | None:
        if self.db is None:
            return None
        rows = list(self.db["web_cache"].rows_where("query = ?", [key]))
        if not rows or self._clock() - rows[0]["fetched_at"] > self.cache_ttl_s:
            return None
        return [SearchResult(**r) for r in json.loads(rows[0]["results"])]

    def _store(self, key: str, results: list[SearchResult]) -> None:
        if self.db is None:
            return
        payload: dict[str, Any] = {
            "query": key,
            "results": json.dumps([asdict(r) for r in results]),
            "fetched_at": self._clock(),
        }
        with self.db.atomic():
            self.db["web_cache"].upsert(payload, pk="query")  # type: ignore[union-attr]


def format_results(results: Sequence[SearchResult], max_chars: int = 300) -> str:
    """Render results as a quote of numbered lines the model reads as data.

    Title and address come from the page too, so they are made one line like the snippet.
    """
    if not results:
        return "no results"
    lines = []
    for i, r in enumerate(results, 1):
        title, url = one_line(r.title)[:200], one_line(r.url)[:300]
        lines.append(f"[{i}] {title} ({url}): {one_line(r.snippet)[:max_chars]}")
    return quote_data("web pages", lines)


def make_web_search_tool(searcher: WebSearcher) -> BaseTool:
    """The web search as a LangChain tool; failures become a one-line message, never a crash."""

    def web_search(query: str) -> str:
        """Search the web for recent or outside facts. Input: a short search query."""
        if searcher.offline and searcher.db is None:
            return UNAVAILABLE
        try:
            return format_results(searcher.search(query))
        except SearchTimedOut:
            return "web search timed out; try again later or answer without it"
        except RateLimited:
            return "web search is rate limited right now; answer without it"
        except SearchFailed as exc:
            return str(exc) if str(exc) == UNAVAILABLE else f"web search failed: {exc}"

    return StructuredTool.from_function(
        web_search, metadata={"gbnf_input": "[^\\n]{1,80}", "risky": True}
    )
