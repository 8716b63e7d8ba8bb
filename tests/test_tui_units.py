"""Pure parts of the app: slash parsing, keymaps, the budget, the source opener."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.backends.scripted import ScriptedBackend
from assistant.errors import ConfigError
from assistant.rag.index import Hit
from tui.budget import Budget, measure
from tui.commands import COMMANDS, UnknownCommandError, parse_slash
from tui.keys import APP_KEYS, parse_keymap
from tui.opener import open_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/new", ("new", "")),
        ("  /ingest ~/my notes  ", ("ingest", "~/my notes")),
        ("/MODEL qwen", ("model", "qwen")),
        ("hello /new", None),
        ("//not a command", None),
        ("", None),
    ],
)
def test_parse_slash(text: str, expected: tuple[str, str] | None) -> None:
    parsed = parse_slash(text)
    assert (None if parsed is None else (parsed[0].name, parsed[1])) == expected


def test_unknown_slash_command_names_the_valid_ones() -> None:
    with pytest.raises(UnknownCommandError, match="no command /nope; the commands are /new"):
        parse_slash("/nope x")


def test_every_required_command_exists_with_help() -> None:
    names = {c.name for c in COMMANDS}
    required = {"new", "model", "system", "memory", "ingest", "sources", "tools", "adapter"}
    assert required | {"export", "help"} <= names
    assert all(c.help for c in COMMANDS)


def test_keymap_defaults_and_overrides() -> None:
    assert parse_keymap(None).app == APP_KEYS
    keys = parse_keymap("stop=ctrl+c,escape; send=ctrl+s ; newline=enter")
    assert keys.app["stop"] == "ctrl+c,escape"
    assert keys.send == ("ctrl+s",)
    assert keys.newline == ("enter",)


@pytest.mark.parametrize(
    ("text", "message"),
    [("jump=ctrl+x", "unknown key binding 'jump'"), ("stop=", "needs at least one key")],
)
def test_bad_keymaps_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_keymap(text)


def test_budget_counts_each_part_with_the_backend() -> None:
    backend = ScriptedBackend(context_length=100)
    budget = measure(
        backend,
        system="be brief",
        memory=["a summary here", "a fact"],
        documents=["one two three four"],
        history=[{"role": "user", "content": "hi there"}],
        reserve=20,
    )
    assert budget == Budget(100, system=6, memory=5, documents=4, history=6, reserve=20)
    assert (budget.used, budget.free) == (21, 59)


def test_open_command_uses_editor_line_and_viewer_for_pdf(tmp_path: Path) -> None:
    text = tmp_path / "a.md"
    text.write_text("x")
    pdf = tmp_path / "b.pdf"
    pdf.write_bytes(b"%PDF")
    hit = Hit(str(text), None, 12, 20, "", 1.0, "x")
    assert open_command(hit, {"EDITOR": "code --wait"}) == ["code", "--wait", "+12", str(text)]
    assert open_command(Hit(str(pdf), 3, None, None, "", 1.0, "x"), {})[-1] == str(pdf)  # type: ignore[index]
    assert open_command(Hit(str(tmp_path / "gone.md"), None, 1, 1, "", 1.0, "x"), {}) is None
