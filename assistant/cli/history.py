"""``assistant history``: list, search, show, export and import conversations; chat in one."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from assistant.cli.options import model_options
from assistant.cli.turns import approve_on_terminal, render
from assistant.config import load_config
from assistant.errors import AssistantError
from assistant.memory.factory import open_store
from assistant.memory.store import MemoryStore
from assistant.memory.transfer import (
    dumps,
    export_json,
    export_markdown,
    import_json,
    read_export,
)
from assistant.responders import MODES
from assistant.services import Services


def _store() -> MemoryStore:
    return open_store(load_config())


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group()
def history() -> None:
    """Stored conversations."""


@history.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_conversations(limit: int, as_json: bool) -> None:
    """List conversations, most recent first."""
    conversations = _store().conversations(limit)
    if as_json:
        _echo_json([dataclasses.asdict(c) for c in conversations])
        return
    if not conversations:
        click.echo("no conversations yet")
    for c in conversations:
        click.echo(f"{c.id}  {c.updated_at[:16].replace('T', ' ')}  [{c.strategy}]  {c.title}")


@history.command("search")
@click.argument("query")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(query: str, limit: int, as_json: bool) -> None:
    """Find messages matching any word of QUERY, best first."""
    hits = _store().search_messages(query, limit)
    if as_json:
        _echo_json([dataclasses.asdict(h) for h in hits])
        return
    if not hits:
        click.echo("no matches")
    for h in hits:
        click.echo(f"{h.conversation_id}  {h.role:<9}  {' '.join(h.content.split())[:100]}")


@history.command("show")
@click.argument("conversation")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the export format).")
def show(conversation: str, as_json: bool) -> None:
    """Print one CONVERSATION (an id or a unique prefix of one), with message ids."""
    store = _store()
    if as_json:
        click.echo(dumps(export_json(store, conversation)))
    else:
        from assistant.cli.history_versions import message_notes

        notes = message_notes(store, store.conversation(conversation).id)
        click.echo(export_markdown(store, conversation, notes=notes), nl=False)


@history.command("export")
@click.argument("conversation")
@click.option("--format", "fmt", type=click.Choice(["json", "md"]), default="json")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
def export(conversation: str, fmt: str, output: Path | None) -> None:
    """Export CONVERSATION as JSON (lossless, re-importable) or Markdown."""
    store = _store()
    text = dumps(export_json(store, conversation)) + "\n" if fmt == "json" else None
    text = text if text is not None else export_markdown(store, conversation)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@history.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--new-id", help="Import under this id instead of the exported one.")
@click.option("--json", "as_json", is_flag=True, help="Print the imported conversation as JSON.")
def import_(file: Path, new_id: str | None, as_json: bool) -> None:
    """Import a conversation exported with `history export --format json`."""
    data = read_export(file)
    try:
        conversation = import_json(_store(), data, new_id=new_id)
    except AssistantError as exc:
        raise AssistantError(f"{file}: {exc}") from exc
    if as_json:
        _echo_json(dataclasses.asdict(conversation))
    else:
        click.echo(f"imported {conversation.id}: {conversation.title}")


@history.command("strategy")
@click.argument("conversation")
@click.argument("strategy")
def strategy(conversation: str, strategy: str) -> None:
    """Set CONVERSATION's memory STRATEGY: buffer, window:K, summary, summary_buffer[:T]."""
    from assistant.memory.strategies import StrategySpec

    store = _store()
    spec = str(StrategySpec.parse(strategy))
    store.update_conversation(store.conversation(conversation).id, strategy=spec)
    click.echo(f"{conversation}: {spec}")


@history.command("send")
@click.argument("text")
@click.option("--conversation", "-c", "conversation", help="Continue this conversation.")
@click.option("--strategy", help="Memory strategy (buffer, window:K, summary, summary_buffer).")
@click.option(
    "--mode", type=click.Choice(MODES),
    help="Answer in this mode from now on (default: the conversation's own, chat when new).",
)  # fmt: skip
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def send(
    text: str,
    conversation: str | None,
    strategy: str | None,
    mode: str | None,
    as_json: bool,
    **flags: object,
) -> None:
    """Send TEXT in a stored conversation (a new one unless --conversation) and stream the reply."""
    services = Services(load_config(flags))
    store = services.store
    conversation_id = store.conversation(conversation).id if conversation else None
    session = services.session(conversation_id, strategy=strategy)
    if mode:
        session.set_mode(mode)
    if text == "-":
        text = sys.stdin.read()
    mode = session.conversation.mode
    responder = services.responder(mode, approve=None if as_json else approve_on_terminal)
    result = render(session.send(text, responder), stream=not as_json)
    reply = session.messages()[-1]
    if as_json:
        _echo_json(
            {
                "conversation_id": session.conversation_id,
                "mode": mode,
                "answer": result.answer,
                "status": reply.status,
                "memory": reply.memory,
                "prompt_tokens": reply.prompt_tokens,
                "cached_tokens": reply.cached_tokens,
            }
        )
    else:
        click.echo(f"[conversation {session.conversation_id}]", err=True)


@history.command("mark")
@click.argument("conversation")
@click.option("--unmark", is_flag=True, help="Remove the mark instead.")
def mark(conversation: str, unmark: bool) -> None:
    """Mark CONVERSATION as training data for a personal adapter (or --unmark it)."""
    store = _store()
    conversation_id = store.conversation(conversation).id
    store.update_conversation(conversation_id, marked_for_training=0 if unmark else 1)
    click.echo(f"{conversation_id}: {'not ' if unmark else ''}marked for training")


@history.command("delete")
@click.argument("conversation")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(conversation: str, yes: bool) -> None:
    """Delete CONVERSATION with its messages and summaries (facts stay)."""
    store = _store()
    found = store.conversation(conversation)
    if not yes:
        click.confirm(f"delete {found.id} ({found.title})?", abort=True)
    store.delete_conversation(found.id)
    click.echo(f"deleted {found.id}")
