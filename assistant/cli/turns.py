"""Rendering a turn's events on the terminal: the answer to stdout, tool steps to stderr.

``ask`` (in every mode) and ``history send`` drive :meth:`ChatSession.send`; this module
only shows what it yields, streamed or as one JSON object.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click

from assistant.backends.base import Done, Token
from assistant.confidence import low_confidence, low_confidence_note
from assistant.memory.reply import FactStored, FinalText
from assistant.rag.discover import printable
from assistant.responders import Sources
from assistant.thinking import Thinking


def approve_on_terminal(tool: str, tool_input: str) -> bool:
    """Ask on the terminal whether a risky tool may run; refuse when nobody can answer."""
    if not sys.stdin.isatty():
        return False
    return click.confirm(f"run {tool}({tool_input!r})?", default=False, err=True)


class TurnResult:
    """What a turn produced, gathered from its events."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.done: Done | None = None
        self.final: FinalText | None = None
        self.sources: Sources | None = None
        self.agent: Any = None  # the AgentResult of an agent turn
        self.facts: list[str] = []
        self.thinking: list[str] = []  # a reasoning model's <think> text

    @property
    def reasoning(self) -> str | None:
        """The reply's reasoning, if the model wrote any."""
        return "".join(self.thinking).strip() or None

    @property
    def answer(self) -> str:
        """The reply's text as stored."""
        return (self.final.text if self.final else "".join(self.parts)).strip()


def render(events: Iterable[Any], *, stream: bool, show_thinking: bool = False) -> TurnResult:
    """Consume a turn's events; with ``stream``, print them as they come (the reasoning
    of a reasoning model only with ``show_thinking``: dimmed, on stderr)."""
    from assistant.agent.events import AgentResult, Observed, ToolCalled

    result = TurnResult()
    for event in events:
        if isinstance(event, Token):
            result.parts.append(event.text)
            if stream:
                click.echo(event.text, nl=False)
                sys.stdout.flush()
        elif isinstance(event, Thinking):
            if event.moved:  # what streamed as the answer was reasoning
                result.parts.clear()
            result.thinking.append(event.text)
            if stream and show_thinking:
                click.echo(click.style(event.text, dim=True), nl=False, err=True)
        elif isinstance(event, Done):
            result.done = event
        elif isinstance(event, FinalText):
            result.final = event
        elif isinstance(event, Sources):
            result.sources = event
        elif isinstance(event, AgentResult):
            result.agent = event
        elif isinstance(event, FactStored):
            result.facts.append(event.fact)
            if stream:
                click.echo(f"(remembered: {printable(event.fact)})", err=True)
        elif stream and isinstance(event, ToolCalled):
            click.echo(f"→ {event.tool}({event.tool_input})", err=True)
        elif stream and isinstance(event, Observed):
            click.echo(f"← {event.text.splitlines()[0] if event.text else ''}", err=True)
    if stream:
        if show_thinking and result.thinking:
            click.echo(err=True)
        streamed = "".join(result.parts).strip()
        if result.final is not None and streamed != result.answer:
            # A forced or fallback agent answer was not streamed as it is.
            click.echo(("\n" if streamed else "") + result.answer, nl=False)
        click.echo()
        unsure = low_confidence(result.done.extra) if result.done is not None else None
        if unsure is not None:
            click.echo(f"({low_confidence_note(unsure)})", err=True)
        if result.sources is not None and result.sources.hits:
            show_sources(result.sources)
    return result


def show_sources(sources: Sources) -> None:
    """The numbered sources under an answer, cited ones starred."""
    click.echo("\nSources:")
    for n, hit in enumerate(sources.hits, 1):
        mark = "*" if n in sources.cited else " "
        heading = f" ({hit.heading})" if hit.heading else ""
        click.echo(printable(f"{mark}[{n}] {hit.location()}{heading}"))


def as_json(result: TurnResult, model: str, mode: str) -> dict[str, Any]:
    """The JSON object ``ask --json`` prints for a turn of ``mode``."""
    if mode == "agent" and result.agent is not None:
        return {**result.agent.as_dict(), "model": model, "thinking": result.reasoning}
    payload: dict[str, Any] = {"answer": result.answer, "thinking": result.reasoning}
    payload["model"] = model
    if mode == "documents" and result.sources is not None:
        s = result.sources
        payload.update(
            found=s.found,
            cited=s.cited,
            attributed=s.attributed,
            sources=[{"n": n, **h.as_dict()} for n, h in enumerate(s.hits, 1)],
        )
    done = result.done
    if done is not None:
        payload.update(
            finish_reason=done.finish_reason,
            usage={
                "prompt_tokens": done.usage.prompt_tokens,
                "completion_tokens": done.usage.completion_tokens,
            },
            timings={
                "ttft_s": round(done.timings.ttft_s, 4),
                "tokens_per_s": round(done.timings.tokens_per_s, 2),
                "total_s": round(done.timings.total_s, 4),
            },
        )
        if "confidence" in done.extra:  # documents answers (see assistant/rag/responder.py)
            payload["confidence"] = done.extra["confidence"]
    if result.facts:
        payload["remembered"] = result.facts
    return payload
