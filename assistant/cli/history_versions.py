"""``assistant history regenerate|edit|versions|switch|rate``: versions of messages.

Regenerate and edit keep every earlier version (see :mod:`assistant.memory.versions`);
``versions`` lists them, ``switch`` makes one active again, ``rate`` marks a reply good or
bad (preference data for ``assistant train``, from conversations marked for training).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import click

from assistant.cli.history import _store, history
from assistant.cli.options import model_options
from assistant.cli.turns import approve_on_terminal, render
from assistant.config import load_config
from assistant.memory.preferences import rate as rate_message
from assistant.memory.session import ChatSession
from assistant.memory.store import MemoryStore
from assistant.memory.versions import Version
from assistant.services import Services

_RATINGS = {"up": 1, "down": -1, "clear": 0}
_RATED = {1: "rated up", -1: "rated down"}


def message_notes(store: MemoryStore, conversation_id: str) -> dict[int, str]:
    """For each active message: its id, ``version N/M`` when it has others, its rating."""
    counts = store.version_counts(conversation_id)
    ratings = store.ratings_of(conversation_id)
    notes = {}
    for m in store.messages(conversation_id):
        parts = [f"id {m.id}"]
        if m.id in counts:
            parts.append("version {}/{}".format(*counts[m.id]))
        if ratings.get(m.id):
            parts.append(_RATED[ratings[m.id]])
        notes[m.id] = " · ".join(parts)
    return notes


def _turn(services: Services, session: ChatSession, events: Iterator[Any], as_json: bool) -> None:
    result = render(events, stream=not as_json)
    reply = session.messages()[-1]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "conversation_id": session.conversation_id,
                    "message_id": reply.id,
                    "answer": result.answer,
                    "status": reply.status,
                    "versions": len(session.store.versions(reply.id)),
                },
                ensure_ascii=False,
            )
        )
    else:
        total = len(session.store.versions(reply.id))
        click.echo(
            f"[conversation {session.conversation_id}, reply {reply.id}, version {total}/{total}]",
            err=True,
        )


def _responder(services: Services, session: ChatSession, as_json: bool) -> Any:
    approve = None if as_json else approve_on_terminal
    return services.responder(session.conversation.mode, approve=approve)


@history.command("regenerate")
@click.argument("conversation")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def regenerate(conversation: str, as_json: bool, **flags: object) -> None:
    """Answer CONVERSATION's last message again; the old reply is kept as a version."""
    services = Services(load_config(flags))
    session = services.session(services.store.conversation(conversation).id)
    events = session.regenerate(_responder(services, session, as_json))
    _turn(services, session, events, as_json)


@history.command("edit")
@click.argument("message_id", type=int)
@click.argument("text")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def edit(message_id: int, text: str, as_json: bool, **flags: object) -> None:
    """Replace user message MESSAGE_ID by TEXT and answer it (the old branch is kept).

    TEXT "-" reads it from stdin. `history show CID` prints the message ids.
    """
    services = Services(load_config(flags))
    message, _active = services.store.any_message(message_id)
    if text == "-":
        text = sys.stdin.read()
    session = services.session(message.conversation_id)
    events = session.edit(message_id, text, _responder(services, session, as_json))
    _turn(services, session, events, as_json)


def _version_line(v: Version) -> str:
    marks = ["active" if v.active else "", _RATED.get(v.rating, "")]
    flags = ", ".join(m for m in marks if m)
    text = " ".join(v.message.content.split())
    return (
        f"{v.number}/{v.total}  id {v.message.id}  {v.message.role:<9} "
        f"{'[' + flags + ']  ' if flags else ''}{text[:100]}"
    )


@history.command("versions")
@click.argument("message_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def versions(message_id: int, as_json: bool) -> None:
    """List the versions of MESSAGE_ID's position, oldest first (the active one marked)."""
    found = _store().versions(message_id)
    if as_json:
        rows = [
            {
                "number": v.number,
                "total": v.total,
                "active": v.active,
                "rating": v.rating,
                "id": v.message.id,
                "role": v.message.role,
                "status": v.message.status,
                "content": v.message.content,
                "created_at": v.message.created_at,
            }
            for v in found
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for v in found:
        click.echo(_version_line(v))


@history.command("switch")
@click.argument("versions", nargs=-1, required=True, type=int)
def switch(versions: tuple[int, ...]) -> None:
    """Make each of VERSIONS (message ids from `history versions`) active, in order.

    What followed a version when it was replaced comes back with it; what it replaces is
    kept as another version.
    """
    store = _store()
    for message_id in versions:
        store.any_message(message_id)  # every id checked before anything moves
    for message_id in versions:
        message = store.activate_version(message_id)
        mine = next(v for v in store.versions(message_id) if v.message.id == message_id)
        click.echo(
            f"{message.conversation_id}: message {message_id} is active "
            f"(version {mine.number}/{mine.total})"
        )


@history.command("rate")
@click.argument("message_id", type=int)
@click.argument("rating", type=click.Choice(list(_RATINGS)))
def rate(message_id: int, rating: str) -> None:
    """Rate reply MESSAGE_ID up or down (or clear it): preference data for training."""
    store = _store()
    rate_message(store, message_id, _RATINGS[rating])
    message, _active = store.any_message(message_id)
    if rating == "clear":
        click.echo(f"message {message_id}: rating cleared")
        return
    conversation = store.conversation(message.conversation_id)
    note = (
        ""
        if conversation.marked_for_training
        else f" (used for training once you run `assistant history mark {conversation.id}`)"
    )
    click.echo(f"message {message_id}: rated {rating}{note}")
