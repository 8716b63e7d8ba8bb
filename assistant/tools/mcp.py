"""MCP servers as agent tools, through the ``mcp`` SDK's client.

Each server in ``[mcp_servers.NAME]`` (config.toml) is started (stdio: a command; or reached:
a streamable HTTP url) when the tools are first built, and kept for the session: one
background thread runs an asyncio loop holding every server's :class:`mcp.ClientSession`,
so the agent's synchronous loop calls a tool and waits at most ``call_timeout_s`` for it. Each
tool the server lists becomes a LangChain ``StructuredTool`` of the same schema, marked
risky (the user approves each call) unless the server is ``trusted``; its metadata names the
server. A server that fails to start or does not answer in time is left out with a
one-line error, and the other tools still work.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from assistant.config import McpServerConfig
from assistant.errors import AssistantError

LOG = logging.getLogger("assistant.mcp")
_NAME = re.compile(r"[^A-Za-z0-9_-]")
# A server's tool descriptions reach the prompt and the terminal: at most this many
# characters, with control characters (terminal escapes) dropped.
MAX_DESCRIPTION_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def bounded_description(text: str, limit: int = MAX_DESCRIPTION_CHARS) -> str:
    """A server's description made safe to show and to put in a prompt: control
    characters removed (newlines and tabs kept), cut at ``limit`` characters."""
    clean = _CONTROL.sub("", text).strip()
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


class McpError(AssistantError):
    """An MCP server did not start, or a call to it failed or timed out."""


@dataclass(frozen=True)
class McpToolInfo:
    """What ``assistant tools list`` and ``/tools`` show of one tool."""

    name: str
    source: str  # "built-in" or "mcp:SERVER"
    risky: bool
    description: str


def tool_info(tool: BaseTool) -> McpToolInfo:
    """Name, source, whether it asks first, and the first line of its description."""
    meta = tool.metadata or {}
    server = meta.get("mcp_server")
    first = bounded_description(tool.description or "").splitlines()
    return McpToolInfo(
        tool.name,
        f"mcp:{server}" if server else "built-in",
        bool(meta.get("risky")),
        first[0] if first else "",
    )


class _Loop:
    """An asyncio loop in a daemon thread, for the sessions and the calls made to them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mcp", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class McpServer:
    """One connected server: its session lives in a single task from start to close.

    (The SDK's transports hold anyio cancel scopes that must be left in the task that
    entered them, so opening, serving and closing happen in one coroutine.)
    """

    def __init__(self, config: McpServerConfig, runner: _Loop, log_dir: Path | None) -> None:
        self.config = config
        self.runner = runner
        self.log_dir = log_dir
        self.session: Any = None
        self.listed: list[Any] = []
        self._stop: asyncio.Event | None = None
        self._task: Future[Any] | None = None

    @property
    def where(self) -> str:
        """The command line or url, for messages."""
        c = self.config
        return c.url or " ".join([c.command or "", *c.args]).strip()

    def start(self) -> None:
        """Start (or reach) the server and list its tools.

        Raises:
            McpError: it failed to start, or did not answer within ``timeout_s``.
        """
        ready: Future[None] = Future()
        self._task = self.runner.submit(self._serve(ready))
        try:
            # _serve gives up at timeout_s itself, so that it cleans up in its own task.
            ready.result(timeout=self.config.timeout_s + 10)
        except (TimeoutError, FutureTimeout):
            self._wait_end()
            raise McpError(
                f"MCP server {self.config.name!r} ({self.where}) did not answer within "
                f"{self.config.timeout_s:g} s; check it runs on its own, or raise timeout_s"
            ) from None
        except Exception as exc:
            self._wait_end()
            path = self._log_path()
            said = path is not None and path.exists() and path.stat().st_size > 0
            log = f"; its output is in {path}" if said else ""
            raise McpError(
                f"MCP server {self.config.name!r} ({self.where}) failed to start: "
                f"{_describe(exc)}{log}"
            ) from exc

    def _log_path(self) -> Path | None:
        return self.log_dir / f"mcp-{self.config.name}.log" if self.log_dir else None

    async def _serve(self, ready: Future[None]) -> None:
        from mcp import ClientSession

        self._stop = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None
        expired: list[bool] = []

        def give_up() -> None:
            expired.append(True)
            task.cancel()

        watchdog = asyncio.get_running_loop().call_later(self.config.timeout_s, give_up)
        try:
            async with AsyncExitStack() as stack:
                read, write = await self._transport(stack)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self.listed = list((await session.list_tools()).tools)
                watchdog.cancel()
                self.session = session
                ready.set_result(None)
                await self._stop.wait()
        except asyncio.CancelledError:
            if ready.done():
                raise
            ready.set_exception(TimeoutError())  # the watchdog: the transport is closed now
        except Exception as exc:  # a cancelled transport may raise its own error instead
            if not ready.done():
                ready.set_exception(TimeoutError() if expired else exc)
        finally:
            watchdog.cancel()
            self.session = None

    async def _transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        config = self.config
        if config.url:
            from mcp.client.streamable_http import streamable_http_client

            read, write, _ = await stack.enter_async_context(streamable_http_client(config.url))
            return read, write
        from mcp import StdioServerParameters
        from mcp.client.stdio import get_default_environment, stdio_client

        log_path = self._log_path()
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            errlog = stack.enter_context(log_path.open("a", encoding="utf-8"))
        else:
            errlog = stack.enter_context(open("/dev/null", "w"))  # noqa: SIM115
        params = StdioServerParameters(
            command=config.command or "",
            args=list(config.args),
            env={**get_default_environment(), **dict(config.env)},
        )
        read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        return read, write

    def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call ``tool``; its text content, or ``error: ...`` for a tool-reported error.

        Raises:
            McpError: the server is gone or did not answer within ``call_timeout_s``.
        """
        session = self.session
        if session is None:
            raise McpError(f"MCP server {self.config.name!r} is not running")
        future = self.runner.submit(session.call_tool(tool, arguments))
        limit = self.config.call_timeout_s
        try:
            result = future.result(timeout=limit)
        except FutureTimeout:
            future.cancel()
            raise McpError(
                f"MCP server {self.config.name!r} did not answer {tool} within {limit:g} s "
                "(call_timeout_s)"
            ) from None
        text = _text_of(result)
        return f"error: {text}" if result.isError and not text.startswith("error:") else text

    def _wait_end(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            try:
                task.result(timeout=10)
            except Exception:  # it failed to start: the reason is already reported
                task.cancel()

    def close(self) -> None:
        """Stop the session (a stdio server's process ends with it)."""
        stop, task, started = self._stop, self._task, self.session is not None
        self._task = None
        if task is None:
            return
        if not started:  # still starting (a timeout): nothing to close cleanly
            task.cancel()
            return
        if stop is not None:
            self.runner.loop.call_soon_threadsafe(stop.set)
        try:
            task.result(timeout=5)
        except Exception:  # closing: whatever the transport says on the way out
            task.cancel()


def _describe(exc: BaseException) -> str:
    """A one-line reason, unwrapping anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _text_of(result: Any) -> str:
    parts = []
    for item in result.content:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(item, 'type', 'content')}]")
    if not parts and result.structuredContent is not None:
        import json

        parts.append(json.dumps(result.structuredContent, ensure_ascii=False))
    return "\n".join(parts)


class McpToolset:
    """The tools of every configured MCP server, and the errors of those that failed."""

    def __init__(self) -> None:
        self.tools: list[BaseTool] = []
        self.errors: list[str] = []
        self.servers: list[McpServer] = []
        self._runner: _Loop | None = None

    @classmethod
    def start(
        cls,
        configs: Sequence[McpServerConfig],
        *,
        taken: Sequence[str] = (),
        log_dir: Path | None = None,
    ) -> McpToolset:
        """Start every server (one after another) and wrap their tools.

        ``taken``: names already used (the built-in tools); a clashing MCP tool is named
        ``SERVER_TOOL`` instead. Never raises for a server: its error is kept in ``errors``
        (and logged) and the others go on.
        """
        toolset = cls()
        if not configs:
            return toolset
        toolset._runner = _Loop()
        names = set(taken)
        for config in configs:
            server = McpServer(config, toolset._runner, log_dir)
            try:
                server.start()
            except McpError as exc:
                toolset.errors.append(str(exc))
                LOG.warning("%s", exc)
                continue
            toolset.servers.append(server)
            for listed in server.listed:
                tool = _wrap(server, listed, names)
                names.add(tool.name)
                toolset.tools.append(tool)
        atexit.register(toolset.close)
        return toolset

    def close(self) -> None:
        """Stop every server and the loop thread (idempotent)."""
        for server in self.servers:
            server.close()
        self.servers = []
        if self._runner is not None:
            self._runner.stop()
            self._runner = None


def _wrap(server: McpServer, listed: Any, taken: set[str]) -> BaseTool:
    name = _NAME.sub("_", listed.name)[:64] or "tool"
    if not name[0].isalpha():
        name = f"t_{name}"[:64]
    if name in taken:
        name = _NAME.sub("_", f"{server.config.name}_{name}")[:64]
    base, n = name, 2
    while name in taken:  # two servers' tools of one name, or a server listing it twice
        name = f"{base[: 64 - len(str(n)) - 1]}_{n}"
        n += 1
    remote = listed.name
    trusted = server.config.trusted

    def run(**arguments: Any) -> str:
        return server.call(remote, arguments)

    schema = dict(listed.inputSchema or {"type": "object", "properties": {}})
    return StructuredTool(
        name=name,
        description=bounded_description(listed.description or remote),
        args_schema=schema,
        func=run,
        metadata={"risky": not trusted, "mcp_server": server.config.name, "trusted": trusted},
    )
