"""Pure parts of the app: slash parsing and commands, keymaps, the budget, the opener."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from assistant.backends.scripted import ScriptedBackend
from assistant.config import Config, load_config
from assistant.errors import ConfigError
from assistant.rag.index import Hit
from tui.budget import Budget, measure
from tui.commands import BY_NAME, COMMANDS, UnknownCommandError, parse_slash
from tui.keys import APP_KEYS, parse_keymap
from tui.opener import open_command
from tui.slash import ChatHost, SlashCommands


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
    required = {"new", "model", "system", "memory", "ingest", "sources", "documents", "tools"}
    assert required | {"adapter", "export", "help"} <= names
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


class RecordingHost:
    """As much of a chat screen as these commands use; it records what it is asked."""

    def __init__(self) -> None:
        self.mode = "chat"
        self.ready = True
        self.live = None
        self.comparing = False
        self.tool_names = ["calculator"]
        self.config: Config = load_config()
        self.modes: list[str] = []
        self.notes: list[str] = []
        self.prompt = ""

    def notify(self, message: str, **kwargs: Any) -> None:
        self.notes.append(message)

    def set_mode(self, mode: str) -> None:
        self.modes.append(mode)
        self.mode = mode

    def put_in_prompt(self, text: str) -> None:
        self.prompt = text


def test_slash_commands_run_through_a_small_host() -> None:
    host = RecordingHost()
    slash = SlashCommands(cast(ChatHost, host))
    assert set(slash.handlers) == {c.name for c in COMMANDS}
    for name in ("documents", "documents", "tools"):
        assert slash.run(BY_NAME[name], "")
    assert host.modes == ["documents", "chat", "agent"]
    assert host.notes[-1] == "tools on: calculator"
    assert not slash.run(BY_NAME["compare"], "Who are you?")  # no adapter loaded
    assert "/adapter" in host.notes[-1] and host.modes == ["documents", "chat", "agent"]
    slash.from_palette(BY_NAME["ingest"])  # needs an argument: goes to the prompt
    assert host.prompt == "/ingest "
