"""``assistant memory``: the long-term facts and the running summaries, visible and editable."""

from __future__ import annotations

import dataclasses
import json

import click

from assistant.config import load_config
from assistant.memory.factory import open_store
from assistant.memory.store import MemoryStore


def _store() -> MemoryStore:
    return open_store(load_config())


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group()
def memory() -> None:
    """Facts the assistant remembers, and conversation summaries."""


@memory.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_facts(as_json: bool) -> None:
    """List remembered facts."""
    facts = _store().facts()
    if as_json:
        _echo_json([dataclasses.asdict(f) for f in facts])
        return
    if not facts:
        click.echo(
            'no facts yet; add one with `assistant memory add TEXT` or say "remember that ..."'
        )
    for fact in facts:
        click.echo(f"{fact.id:>4}  {fact.content}")


@memory.command("add")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print the new fact as JSON.")
def add_fact(text: str, as_json: bool) -> None:
    """Remember TEXT as a fact."""
    if not text.strip():
        raise click.BadParameter("the fact is empty", param_hint="TEXT")
    fact = _store().add_fact(text)
    if as_json:
        _echo_json(dataclasses.asdict(fact))
    else:
        click.echo(f"remembered {fact.id}: {fact.content}")


@memory.command("edit")
@click.argument("fact_id", type=int)
@click.argument("text")
def edit_fact(fact_id: int, text: str) -> None:
    """Replace the text of fact FACT_ID."""
    fact = _store().edit_fact(fact_id, text)
    click.echo(f"fact {fact.id}: {fact.content}")


@memory.command("forget")
@click.argument("fact_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the forgotten fact as JSON.")
def forget_fact(fact_id: int, as_json: bool) -> None:
    """Forget fact FACT_ID."""
    fact = _store().forget_fact(fact_id)
    if as_json:
        _echo_json(dataclasses.asdict(fact))
    else:
        click.echo(f"forgot {fact.id}: {fact.content}")


@memory.command("summaries")
@click.argument("conversation", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_summaries(conversation: str | None, as_json: bool) -> None:
    """List running summaries (of one CONVERSATION, or all)."""
    store = _store()
    conversation_id = store.conversation(conversation).id if conversation else None
    summaries = store.summaries(conversation_id)
    if as_json:
        _echo_json([dataclasses.asdict(s) for s in summaries])
        return
    for s in summaries:
        click.echo(f"{s.id:>4}  [{s.conversation_id} through #{s.through_seq}]  {s.content}")


@memory.command("edit-summary")
@click.argument("summary_id", type=int)
@click.argument("text")
def edit_summary(summary_id: int, text: str) -> None:
    """Replace the text of summary SUMMARY_ID (used in the next prompts)."""
    summary = _store().edit_summary(summary_id, text)
    click.echo(f"summary {summary.id}: {summary.content}")
