"""``assistant tools list``: the agent's tools, where each comes from, and which ask first."""

from __future__ import annotations

import json
import logging

import click

from assistant.config import load_config
from assistant.tools.mcp import McpToolInfo as ToolInfo


def _approval(info: ToolInfo) -> str:
    """risky, asks first; trusted (an MCP server the user trusts); or safe (built-in)."""
    if info.risky:
        return "risky, asks first"
    return "trusted" if info.source.startswith("mcp:") else "safe"


@click.group()
def tools() -> None:
    """Inspect the agent's tools (built-in and from MCP servers)."""


@tools.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_tools(as_json: bool) -> None:
    """List the tools the agent gets: name, source (built-in or mcp:SERVER), approval.

    MCP servers in config.toml are started to list their tools; a server that fails to
    start or answer is reported on stderr and the other tools are still listed.
    """
    from assistant.services import Services
    from assistant.tools.mcp import tool_info

    logging.getLogger("assistant.mcp").setLevel(logging.ERROR)  # the errors are echoed below
    services = Services(load_config())
    try:
        infos = [tool_info(t) for t in services.tools()]
        errors = list(services.mcp().errors)
    finally:
        services.mcp().close()
    if as_json:
        rows = [
            {
                "name": i.name,
                "source": i.source,
                "risky": i.risky,
                "approval": _approval(i),
                "description": i.description,
            }
            for i in infos
        ]
        click.echo(json.dumps({"tools": rows, "errors": errors}, indent=2))
        return
    width = max((len(i.name) for i in infos), default=4)
    source_width = max((len(i.source) for i in infos), default=6)
    for i in infos:
        line = f"{i.name:<{width}}  {i.source:<{source_width}}  {_approval(i):<17}"
        click.echo(f"{line}  {i.description}")
    for error in errors:
        click.echo(f"error: {error}", err=True)
