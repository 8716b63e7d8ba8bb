"""``assistant models``: list, add, remove and inspect GGUF models and adapters."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant.config import load_config
from assistant.gguf_info import read_gguf_info
from assistant.registry import ModelRegistry


def _registry() -> ModelRegistry:
    return ModelRegistry(load_config().home)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _params(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


@click.group()
def models() -> None:
    """Manage the models and adapters the assistant can load."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(as_json: bool) -> None:
    """List registered models (the bundled one first)."""
    entries = _registry().list()
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    for e in entries:
        tag = (
            " (bundled)" if e.builtin else f" (adapter for {e.base})" if e.kind == "adapter" else ""
        )
        click.echo(f"{e.name}{tag}\n    {e.path}")


@models.command("add")
@click.argument("path")  # a folder or fifo is refused by the registry, in one line
@click.option("--name", help="Name to register it under (default: from the file name).")
@click.option("--chat-format", help="Chat format, required for a GGUF without a chat template.")
@click.option("--base", help="For an adapter: the model it was trained on.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def add_model(
    path: str, name: str | None, chat_format: str | None, base: str | None, as_json: bool
) -> None:
    """Register the GGUF model or LoRA adapter at PATH (a model is test-loaded first)."""
    entry, info = _registry().add(
        path, name=name, chat_format=chat_format, base=base, load_check=True
    )
    if as_json:
        click.echo(json.dumps({**entry.as_dict(), "info": info.as_dict()}, indent=2))
    else:
        click.echo(
            f"added {entry.kind} {entry.name}: {info.architecture}, {_params(info.parameters)}"
        )


@models.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def remove_model(name: str, as_json: bool) -> None:
    """Unregister NAME (the file stays on disk)."""
    entry = _registry().remove(name)
    click.echo(
        json.dumps(entry.as_dict()) if as_json else f"removed {entry.name} ({entry.path} kept)"
    )


@models.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_model(name: str, as_json: bool) -> None:
    """Show architecture, size, quantization, context and chat template of NAME (or a path)."""
    entry = _registry().resolve(name)
    info = read_gguf_info(entry.path)
    data: dict[str, Any] = {"name": entry.name, "kind": entry.kind, **info.as_dict()}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [
        ("name", entry.name),
        ("path", str(info.path)),
        ("architecture", info.architecture),
        ("parameters", _params(info.parameters)),
        ("quantization", info.file_type),
        ("trained context", str(info.context_length)),
        ("chat template", "embedded" if info.has_chat_template else "none (needs --chat-format)"),
        ("file size", _size(info.size_bytes)),
    ]
    if info.is_lora:
        rows.insert(2, ("type", "LoRA adapter"))
    for key, value in rows:
        click.echo(f"{key:>16}: {value}")
