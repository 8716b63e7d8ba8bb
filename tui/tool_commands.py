"""``/tools list``: the agent's tools in a note — name, source (built-in or the MCP server),
and whether each asks first — with the MCP servers that failed to start.

Listing may start the configured MCP servers (seconds), so it runs in a worker and the note
is added when it is ready.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from textual.notifications import SeverityLevel

if TYPE_CHECKING:
    from assistant.services import Services
    from assistant.tools.mcp import McpToolInfo
    from tui.workers import UiThread


class ToolsHost(Protocol):
    """What ``/tools list`` needs of the chat screen."""

    @property
    def services(self) -> Services:
        """The tools (and the MCP servers) live here."""

    @property
    def ui(self) -> UiThread:
        """Calls the UI thread from a worker."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a notification."""

    def add_note(self, markdown: str) -> object:
        """Show a note in the chat."""

    def start(
        self, group: str, work: Callable[..., None], *args: Any, exclusive: bool = True
    ) -> None:
        """Run ``work(*args)`` in a thread worker."""


def _approval(info: McpToolInfo) -> str:
    if info.risky:
        return "risky, asks first"
    return "trusted" if info.source.startswith("mcp:") else "safe"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def tools_markdown(infos: Sequence[McpToolInfo], errors: Sequence[str]) -> str:
    """A Markdown table of the tools, then one line per MCP server that failed."""
    lines = ["**Tools** (`/tools` turns the agent on or off)", "", "| tool | source | approval |"]
    lines.append("| --- | --- | --- |")
    lines += [f"| {_cell(i.name)} | {i.source} | {_approval(i)} |" for i in infos]
    lines += [f"\n**error:** {_cell(e)}" for e in errors]
    return "\n".join(lines)


class ToolCommands:
    """``/tools list`` through a :class:`ToolsHost`."""

    def __init__(self, host: ToolsHost) -> None:
        self.host = host

    def collect(self) -> str:
        """The note's text (starts the MCP servers on first use)."""
        from assistant.tools.mcp import tool_info

        services = self.host.services
        infos = [tool_info(t) for t in services.tools()]
        return tools_markdown(infos, services.mcp().errors)

    def list(self) -> bool:
        """List the tools in a note, from a worker (MCP servers may take seconds to start)."""
        host = self.host

        def work() -> None:
            try:
                text = self.collect()
            except Exception as exc:  # a broken tool set must not take the app down
                host.ui(
                    host.notify, f"cannot list the tools: {exc}", severity="error", markup=False
                )
                return
            host.ui(host.add_note, text)

        host.start("tools", work)
        return True
