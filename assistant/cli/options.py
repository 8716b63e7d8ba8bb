"""Options shared by the commands that run a model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

F = Callable[..., Any]


def model_options(func: F) -> F:
    """Add --model, --adapter, --chat-format, --backend and --server-url to a command."""
    options = [
        click.option(
            "--model", "-m", help="Model name from the registry, or a path to a .gguf file."
        ),
        click.option("--adapter", help="LoRA adapter name from the registry, or a path to one."),
        click.option("--chat-format", help="Chat format for a GGUF without a chat template."),
        click.option(
            "--backend",
            type=click.Choice(["local", "server"]),
            help="Run llama.cpp in-process (local) or use an OpenAI-compatible server.",
        ),
        click.option("--server-url", help="Base URL of the server, e.g. http://127.0.0.1:8080/v1."),
        click.option("--n-ctx", type=int, help="Context window in tokens."),
        click.option("--threads", "n_threads", type=int, help="Threads for token generation."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
