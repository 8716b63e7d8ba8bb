"""``assistant ask``: one question, answered in chat, documents or agent mode.

As with simonw/llm: text piped on stdin goes before the PROMPT argument (``cat notes.txt |
assistant ask "summarise"``), ``-f FILE`` includes files, ``-o NAME VALUE`` sets a sampling
option, and every question and answer is logged to ``memory.db`` (``--no-log`` to skip)
in a conversation that ``-c`` (the latest) or ``--cid ID`` continues.
"""

from __future__ import annotations

import json
import select
import sys
from pathlib import Path

import click

from assistant.cli.options import model_options
from assistant.cli.turns import approve_on_terminal, as_json, render
from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.services import Services
from assistant.templates import Template, TemplateStore

# `-o NAME VALUE`: the sampling options a question may set, with their types.
OPTIONS = {"temperature": float, "top_p": float, "top_k": int, "max_tokens": int, "seed": int}
MAX_FILE_BYTES = 1_000_000


@click.command()
@click.argument("prompt", required=False)
@model_options
@click.option("--system", "-s", help="System prompt.")
@click.option("--max-tokens", type=int, help="Most tokens to generate.")
@click.option("--temperature", type=float, help="Sampling temperature (0 = greedy).")
@click.option("--seed", type=int, help="Random seed, for repeatable answers.")
@click.option(
    "-o", "--option", "option_pairs", type=(str, str), multiple=True, metavar="NAME VALUE",
    help=f"A sampling option: {', '.join(OPTIONS)}.",
)  # fmt: skip
@click.option(
    "-f", "--file", "files", type=click.Path(path_type=Path), multiple=True,
    help="Include this file's text before the prompt (repeatable).",
)  # fmt: skip
@click.option("-c", "--continue", "cont", is_flag=True, help="Continue the latest conversation.")
@click.option("--cid", help="Continue this conversation.")
@click.option("--no-log", is_flag=True, help="Do not store the question and answer.")
@click.option("--json", "json_out", is_flag=True, help="Print one JSON object, not a stream.")
@click.option("--docs", is_flag=True, help="Answer from ingested documents, citing them as [n].")
@click.option("--agent", is_flag=True, help="Answer with tools (calculator, clock, ...).")
@click.option(
    "-t", "--template", "template_name", metavar="NAME",
    help="Use a saved template: its system prompt, its prompt with $input, its options.",
)  # fmt: skip
@click.option(
    "--show-thinking", is_flag=True, help="Print a reasoning model's <think> text on stderr."
)
def ask(
    prompt: str | None,
    system: str | None,
    option_pairs: tuple[tuple[str, str], ...],
    files: tuple[Path, ...],
    cont: bool,
    cid: str | None,
    no_log: bool,
    json_out: bool,
    docs: bool,
    agent: bool,
    template_name: str | None,
    show_thinking: bool,
    **flags: object,
) -> None:
    """Ask one question (PROMPT, or - to read it from stdin) and print the answer."""
    template = _template(template_name)
    text = _question(prompt, files, required=template is None or template.needs_input)
    if template is not None:
        text = template.evaluate(text)
        if system is None:
            system = template.system
        if flags.get("model") is None:
            flags["model"] = template.model
    if docs and agent:
        raise ConfigError("choose one of --docs and --agent")
    if no_log and (cont or cid):
        raise ConfigError("--no-log cannot continue a conversation; drop -c/--cid or --no-log")
    generation = {k: flags.pop(k) for k in ("max_tokens", "temperature", "seed")}
    if template is not None:  # flags and -o win over the template's options
        generation = {**template.options, **{k: v for k, v in generation.items() if v is not None}}
    generation.update(_options(option_pairs))
    config = load_config({**flags, **generation})
    if system is not None:
        config = config.replace(system_prompt=system)
    mode = "documents" if docs else "agent" if agent else "chat"
    if template is not None and template.mode and not (docs or agent):
        mode = template.mode
    services = Services(config)
    # Given here, they win over a continued conversation's own settings (/set).
    explicit = {k: v for k, v in generation.items() if v is not None}
    if no_log:
        from assistant.memory.store import MemoryStore

        session = services.session(store=MemoryStore.in_memory(), overrides=explicit)
    else:
        store = services.store
        conversation_id = cid
        if cont and not cid:
            latest = store.conversations(limit=1)
            if not latest:
                raise ConfigError("there is no conversation to continue; ask without -c first")
            conversation_id = latest[0].id
        if conversation_id:
            conversation_id = store.conversation(conversation_id).id
        session = services.session(conversation_id, overrides=explicit)
        if system is not None and conversation_id:
            store.update_conversation(session.conversation_id, system_prompt=system)
    responder = services.responder(mode, approve=None if json_out else approve_on_terminal)
    result = render(session.send(text, responder), stream=not json_out, show_thinking=show_thinking)
    if json_out:
        payload = as_json(result, services.backend.model_name, mode)
        if not no_log:
            payload["conversation_id"] = session.conversation_id
        click.echo(json.dumps(payload))


def _template(name: str | None) -> Template | None:
    """The saved template ``-t`` names (a missing one is an error listing those saved)."""
    if name is None:
        return None
    from assistant.paths import data_dir

    return TemplateStore.for_home(data_dir()).get(name)


def _question(prompt: str | None, files: tuple[Path, ...], required: bool = True) -> str:
    """The question: piped stdin, then included files, then the PROMPT argument."""
    parts: list[str] = []
    if prompt == "-":
        parts.append(sys.stdin.read())
        prompt = None
    elif _stdin_has_data():
        parts.append(sys.stdin.read())
    for path in files:
        parts.append(_file_block(path))
    if prompt:
        parts.append(prompt)
    text = "\n\n".join(p.strip("\n") for p in parts if p.strip())
    if not text.strip() and required:
        raise ConfigError(
            "the prompt is empty; pass the question as an argument or on stdin with -"
        )
    return text


def _stdin_has_data() -> bool:
    """Whether text is piped in (not a terminal, and readable now or at end of file)."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return False
    try:
        ready, _, _ = select.select([stream], [], [], 0.05)
    except (ValueError, OSError):  # not a real file (e.g. a test runner's stand-in)
        return False
    return bool(ready)


def _file_block(path: Path) -> str:
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no file"
        raise ConfigError(f"-f {path}: {what}, not a text file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(f"-f {path}: larger than {MAX_FILE_BYTES // 1000} kB; include a part")
    try:
        body = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"-f {path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return f"{path.name}:\n```\n{body.rstrip()}\n```"


def _options(pairs: tuple[tuple[str, str], ...]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, raw in pairs:
        kind = OPTIONS.get(name.replace("-", "_"))
        if kind is None:
            raise ConfigError(f"unknown option {name!r}; choose one of {', '.join(OPTIONS)}")
        try:
            values[name.replace("-", "_")] = kind(raw)
        except ValueError:
            raise ConfigError(f"-o {name} {raw!r}: must be {kind.__name__}") from None
    return values
