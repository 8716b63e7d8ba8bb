"""``assistant ask --agent``: answer with tools, printing the answer or a JSON object."""

from __future__ import annotations

import json
import sys

import click

from assistant.agent.events import AgentResult, FinalToken, Observed, ToolCalled
from assistant.agent.loop import ReActAgent
from assistant.config import Config
from assistant.engine import open_backend
from assistant.tools.toolset import assistant_tools


def _approve_on_terminal(tool: str, tool_input: str) -> bool:
    """Ask on the terminal; refuse when nobody can answer."""
    if not sys.stdin.isatty():
        return False
    return click.confirm(f"run {tool}({tool_input!r})?", default=False, err=True)


def run_agent_cli(prompt: str, config: Config, as_json: bool) -> None:
    """Run the agent on ``prompt``; tool calls go to stderr, the answer to stdout."""
    backend = open_backend(config)
    recall = None
    if (config.home / "memory.db").exists():
        from assistant.memory.factory import open_store

        recall = open_store(config).recall
    agent = ReActAgent(
        backend,
        assistant_tools(config, memory_recall=recall),
        max_steps=config.agent_max_steps,
        approve=None if as_json else _approve_on_terminal,
        # Greedy: tool choice and tool inputs should not depend on the dice.
        temperature=0.0,
    )
    result: AgentResult | None = None
    streamed = ""
    for event in agent.run(prompt):
        if isinstance(event, AgentResult):
            result = event
        elif as_json:
            continue
        elif isinstance(event, ToolCalled):
            click.echo(f"→ {event.tool}({event.tool_input})", err=True)
        elif isinstance(event, Observed):
            click.echo(f"← {event.text.splitlines()[0] if event.text else ''}", err=True)
        elif isinstance(event, FinalToken):
            streamed += event.text
            click.echo(event.text, nl=False)
            sys.stdout.flush()
    assert result is not None
    if as_json:
        click.echo(json.dumps({**result.as_dict(), "model": backend.model_name}))
    elif streamed.strip() != result.answer.strip():
        # Forced or fallback answers were not streamed (or differ from the streamed line).
        click.echo(("\n" if streamed else "") + result.answer)
    else:
        click.echo()
