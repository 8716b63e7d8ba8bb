"""The ``assistant`` command line. Errors from the core become one line and an exit code."""

from __future__ import annotations

import sys
from typing import Any

import click

from assistant import __version__
from assistant.cli import history_versions as _history_versions  # noqa: F401 (commands)
from assistant.cli.ask import ask
from assistant.cli.history import history
from assistant.cli.ingest import ingest, resync, search, sources
from assistant.cli.memory import memory
from assistant.cli.models import models
from assistant.cli.templates import templates
from assistant.cli.tools import tools
from assistant.cli.train import train
from assistant.cli.train_embeddings import embeddings
from assistant.errors import AssistantError
from assistant.logs import quiet_library_noise


class _Group(click.Group):
    """A click group that turns AssistantError into ``error: ...`` and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssistantError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, invoke_without_command=True)
@click.version_option(__version__, prog_name="assistant")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Offline terminal assistant. With no command, opens the chat app."""
    quiet_library_noise()
    if ctx.invoked_subcommand is None:
        ctx.invoke(chat)


@cli.command()
@click.option("--model", "-m", help="Model name from the registry, or a path to a .gguf file.")
@click.option("--adapter", help="LoRA adapter name from the registry, or a path to one.")
@click.option("--chat-format", help="Chat format for a GGUF without a chat template.")
@click.option("--conversation", "conversation_id", help="Open this conversation.")
def chat(
    model: str | None, adapter: str | None, chat_format: str | None, conversation_id: str | None
) -> None:
    """Open the chat app."""
    from assistant.config import load_config

    config = load_config({"model": model, "adapter": adapter, "chat_format": chat_format})
    from tui.app import run_app

    run_app(config, conversation_id=conversation_id)


for command in (ask, models, history, memory, ingest, resync, search, sources, train, templates):
    cli.add_command(command)
cli.add_command(tools)
train.add_command(embeddings)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="assistant")
