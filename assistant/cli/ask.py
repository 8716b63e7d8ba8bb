"""``assistant ask``: one question, answered in chat, documents or agent mode."""

from __future__ import annotations

import json
import sys

import click

from assistant.cli.options import model_options
from assistant.cli.turns import approve_on_terminal, as_json, render
from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.services import Services


@click.command()
@click.argument("prompt")
@model_options
@click.option("--system", "-s", help="System prompt.")
@click.option("--max-tokens", type=int, help="Most tokens to generate.")
@click.option("--temperature", type=float, help="Sampling temperature (0 = greedy).")
@click.option("--seed", type=int, help="Random seed, for repeatable answers.")
@click.option(
    "--json", "json_out", is_flag=True, help="Print one JSON object instead of streaming."
)
@click.option("--docs", is_flag=True, help="Answer from ingested documents, citing them as [n].")
@click.option("--agent", is_flag=True, help="Answer with tools (calculator, clock, ...).")
def ask(
    prompt: str, system: str | None, json_out: bool, docs: bool, agent: bool, **flags: object
) -> None:
    """Ask one question (PROMPT, or - to read it from stdin) and print the answer."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigError(
            "the prompt is empty; pass the question as an argument or on stdin with -"
        )
    if docs and agent:
        raise ConfigError("choose one of --docs and --agent")
    generation = {k: flags.pop(k) for k in ("max_tokens", "temperature", "seed")}
    config = load_config({**flags, **generation})
    if system is not None:
        config = config.replace(system_prompt=system)
    mode = "documents" if docs else "agent" if agent else "chat"
    services = Services(config)
    from assistant.memory.store import MemoryStore

    # One question, not a conversation: it is answered by the same turn owner as the app,
    # in a throwaway conversation.
    session = services.session(store=MemoryStore.in_memory())
    responder = services.responder(mode, approve=None if json_out else approve_on_terminal)
    result = render(session.send(prompt, responder), stream=not json_out)
    if json_out:
        click.echo(json.dumps(as_json(result, services.backend.model_name, mode)))
