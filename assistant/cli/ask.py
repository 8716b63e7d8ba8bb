"""``assistant ask``: one question, the answer streamed to stdout."""

from __future__ import annotations

import json
import sys

import click

from assistant.backends.base import ChatMessage, Done, GenerationOptions, collect
from assistant.cli.options import model_options
from assistant.config import load_config
from assistant.engine import open_backend
from assistant.errors import ConfigError


@click.command()
@click.argument("prompt")
@model_options
@click.option("--system", "-s", help="System prompt.")
@click.option("--max-tokens", type=int, help="Most tokens to generate.")
@click.option("--temperature", type=float, help="Sampling temperature (0 = greedy).")
@click.option("--seed", type=int, help="Random seed, for repeatable answers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of streaming.")
@click.option("--docs", is_flag=True, help="Answer from ingested documents, citing them as [n].")
@click.option("--agent", is_flag=True, help="Answer with tools (calculator, clock, ...).")
def ask(
    prompt: str, system: str | None, as_json: bool, docs: bool, agent: bool, **flags: object
) -> None:
    """Ask one question (PROMPT, or - to read it from stdin) and print the answer."""
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigError(
            "the prompt is empty; pass the question as an argument or on stdin with -"
        )
    generation = {k: flags.pop(k) for k in ("max_tokens", "temperature", "seed")}
    config = load_config({**flags, **generation})
    if docs:
        from assistant.cli.ingest import ask_docs

        ask_docs(prompt, config, as_json)
        return
    if agent:
        from assistant.agent.cli import run_agent_cli

        run_agent_cli(prompt, config, as_json)
        return
    backend = open_backend(config)
    messages: list[ChatMessage] = []
    system = system if system is not None else config.system_prompt
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    options = GenerationOptions(
        max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed
    )

    def echo(text: str) -> None:
        click.echo(text, nl=False)
        sys.stdout.flush()

    answer, done = collect(backend.stream(messages, options), None if as_json else echo)
    if as_json:
        click.echo(json.dumps(_result(answer, backend.model_name, done)))
    else:
        click.echo()


def _result(answer: str, model: str, done: Done) -> dict[str, object]:
    return {
        "answer": answer.strip(),
        "model": model,
        "finish_reason": done.finish_reason,
        "usage": {
            "prompt_tokens": done.usage.prompt_tokens,
            "completion_tokens": done.usage.completion_tokens,
        },
        "timings": {
            "ttft_s": round(done.timings.ttft_s, 4),
            "tokens_per_s": round(done.timings.tokens_per_s, 2),
            "total_s": round(done.timings.total_s, 4),
        },
    }
