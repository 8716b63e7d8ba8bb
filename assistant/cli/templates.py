"""``assistant templates``: saved prompts and personas (see :mod:`assistant.templates`)."""

from __future__ import annotations

import click

from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.rag.discover import printable
from assistant.templates import MODES, Template, TemplateStore, check_options

SKELETON = """# A saved prompt / persona: `assistant ask -t {name} "..."`, /persona {name}
system = "You are a helpful assistant."
# prompt = "Summarise this: $input"   # $input is what the user asks
# model = "smollm2-135m"
# mode = "chat"                        # chat, documents or agent

# [options]                            # temperature, top_p, top_k, seed, max_tokens
# temperature = 0.2
"""


def _store() -> TemplateStore:
    return TemplateStore.for_home(load_config().home)


def _one_line(text: str | None, limit: int = 60) -> str:
    line = " ".join((text or "").split())
    return printable(line if len(line) <= limit else line[: limit - 1] + "…")


@click.group()
def templates() -> None:
    """Saved prompts and personas: a system prompt, a prompt with $input, options."""


@templates.command("list")
def list_templates() -> None:
    """List the saved templates (a broken file is listed with its problem)."""
    store = _store()
    names = store.names()
    if not names:
        click.echo("no templates yet; save one with `assistant templates save NAME --system TEXT`")
        return
    for name in names:
        try:
            template = store.get(name)
        except ConfigError as exc:
            click.echo(f"{name} : (broken) {printable(str(exc))}")
            continue
        parts = []
        if template.system:
            parts.append(f"system: {_one_line(template.system)}")
        if template.prompt:
            parts.append(f"prompt: {_one_line(template.prompt)}")
        click.echo(f"{name} : {' | '.join(parts)}")


@templates.command()
@click.argument("name")
def show(name: str) -> None:
    """Print template NAME as its file holds it."""
    store = _store()
    store.get(name)  # a missing or broken one is a clear error
    click.echo(store.path(name).read_text(encoding="utf-8").rstrip("\n"))


@templates.command()
@click.argument("name")
@click.option("--system", "-s", help="The system prompt (who the assistant is).")
@click.option("--prompt", "-p", help="The prompt; $input stands for what the user asks.")
@click.option(
    "-o", "--option", "option_pairs", type=(str, str), multiple=True, metavar="NAME VALUE",
    help="A sampling option: temperature, top_p, top_k, seed, max_tokens.",
)  # fmt: skip
@click.option("--model", "-m", help="The model this template asks for.")
@click.option("--mode", type=click.Choice(MODES), help="Answer in this mode by default.")
@click.option("--force", is_flag=True, help="Replace a template of that name.")
def save(
    name: str,
    system: str | None,
    prompt: str | None,
    option_pairs: tuple[tuple[str, str], ...],
    model: str | None,
    mode: str | None,
    force: bool,
) -> None:
    """Save template NAME."""
    store = _store()
    template = Template(
        name=name,
        system=system,
        prompt=prompt,
        options=check_options(dict(option_pairs)),
        model=model,
        mode=mode,
    )
    if store.exists(name) and not force:
        raise ConfigError(
            f"template {name!r} exists; add --force to replace it, or "
            f"`assistant templates edit {name}`"
        )
    path = store.save(template)
    click.echo(f"saved {path}")


@templates.command()
@click.argument("name")
def edit(name: str) -> None:
    """Edit template NAME in $EDITOR (a new one starts from an example)."""
    store = _store()
    path = store.path(name)
    try:
        current = path.read_text(encoding="utf-8") if path.is_file() else SKELETON.format(name=name)
    except UnicodeDecodeError:
        raise click.ClickException(
            f"{path} is not UTF-8 text; fix or remove it (assistant templates remove {name})"
        ) from None
    edited = click.edit(current, extension=".toml", require_save=True)
    if edited is None:
        click.echo("not changed")
        return
    try:
        store.write_text(name, edited)
    except ConfigError as exc:  # keep what was typed: nothing is lost
        rejected = path.with_name(f".{name}.rejected.toml")
        rejected.parent.mkdir(parents=True, exist_ok=True)
        rejected.write_text(edited, encoding="utf-8")
        raise ConfigError(f"{exc}; not saved, your edit is in {rejected}") from None
    click.echo(f"saved {path}")


@templates.command()
@click.argument("name")
def remove(name: str) -> None:
    """Delete template NAME."""
    _store().remove(name)
    click.echo(f"removed template {name}")


@templates.command()
def path() -> None:
    """Print the folder the templates are kept in."""
    click.echo(str(_store().directory))
