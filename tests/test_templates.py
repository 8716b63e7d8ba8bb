"""Saved prompts / personas: TOML files, `assistant templates ...` and `ask -t NAME`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.backends.scripted import ScriptedBackend
from assistant.cli import cli
from assistant.errors import ConfigError
from assistant.templates import Template, TemplateNotFoundError, TemplateStore, check_name
from tests.test_cli import GREEDY, assert_one_line_error, assistant

# -- the store -------------------------------------------------------------------------


def test_a_template_round_trips_through_its_file(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path / "templates")
    template = Template(
        name="editor",
        system='You are a "terse" copy editor.\nNo chatter.',
        prompt="Fix the grammar of: $input",
        options={"temperature": "0.2", "top_k": 20},
        model="smollm2-135m",
        mode="chat",
    )
    path = store.save(template)
    assert path == tmp_path / "templates" / "editor.toml"
    loaded = store.get("editor")
    assert loaded == template
    assert loaded.options == {"temperature": 0.2, "top_k": 20}
    assert store.names() == ["editor"]
    assert [p.name for p in path.parent.iterdir()] == ["editor.toml"]  # no temporary left


@pytest.mark.parametrize(
    ("prompt", "text", "expected"),
    [
        (None, "hello", "hello"),
        ("Summarise: $input", "the text", "Summarise: the text"),
        ("A ${input} B $$5", "x", "A x B $5"),
        ("Translate to French.", "good night", "Translate to French.\n\ngood night"),
        ("Costs $price: $input", "x", "Costs $price: x"),  # other names are left alone
    ],
)
def test_evaluate_puts_the_input_in_the_prompt(
    prompt: str | None, text: str, expected: str
) -> None:
    assert Template("t", system="s", prompt=prompt).evaluate(text) == expected


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a..b", "con fig", "-rf", "end."]
)
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bad template name"):
        check_name(name)
    with pytest.raises(ConfigError):
        TemplateStore(tmp_path).path(name)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("system = ", "not valid TOML"),
        ('system = "x"\ncolour = "red"', "unknown key 'colour'"),
        ("system = 3", "system must be a string"),
        ('system = "x"\n[options]\ntemperature = "hot"', "temperature must be"),
        ('system = "x"\n[options]\nwarmth = 1', "unknown setting 'warmth'"),
        ('system = "x"\nmode = "poetry"', "mode must be one of chat, documents, agent"),
        ('model = "m"', "give it a system prompt or a prompt"),
    ],
)
def test_bad_files_are_one_clear_error(text: str, needle: str, tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    (tmp_path / "broken.toml").write_text(text)
    with pytest.raises(ConfigError, match=needle) as caught:
        store.get("broken")
    assert "\n" not in str(caught.value).strip() or "TOML" in str(caught.value)
    with pytest.raises(ConfigError):  # and writing such a text changes nothing
        store.write_text("broken", text)
    assert (tmp_path / "broken.toml").read_text() == text


def test_a_missing_template_lists_the_saved_ones(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    with pytest.raises(TemplateNotFoundError, match="none is saved yet"):
        store.get("x")
    store.save(Template("poet", system="You write haiku."))
    store.save(Template("coder", system="You write Python."))
    with pytest.raises(TemplateNotFoundError, match="saved templates: coder, poet"):
        store.get("pirate")
    with pytest.raises(TemplateNotFoundError):
        store.remove("pirate")
    store.remove("poet")
    assert store.names() == ["coder"]


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    """A scripted model in place of the real one (records every prompt it is sent)."""
    backend = ScriptedBackend(["Fixed."] * 5)
    monkeypatch.setattr("assistant.engine.open_backend", lambda config, registry=None: backend)
    return backend


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_templates_commands(home: Path) -> None:
    assert "no templates yet" in run("templates", "list").stdout
    saved = run(
        "templates", "save", "editor", "--system", "You are a copy editor.",
        "--prompt", "Fix: $input", "-o", "temperature", "0.2", "--mode", "chat",
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    assert (home / "templates" / "editor.toml").is_file()
    assert run("templates", "path").stdout.strip() == str(home / "templates")
    listed = run("templates", "list").stdout
    assert listed.startswith("editor : system: You are a copy editor. | prompt: Fix: $input")
    shown = run("templates", "show", "editor").stdout
    assert 'prompt = "Fix: $input"' in shown and "temperature = 0.2" in shown
    again = run("templates", "save", "editor", "--system", "other")
    assert again.exit_code != 0 and "--force" in again.stderr
    assert run("templates", "save", "editor", "--system", "other", "--force").exit_code == 0
    assert run("templates", "show", "editor").stdout.strip() == 'system = "other"'
    assert run("templates", "remove", "editor").exit_code == 0
    gone = run("templates", "show", "editor")
    assert gone.exit_code != 0 and "no template named 'editor'" in gone.stderr


def test_edit_keeps_a_bad_edit_and_changes_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("templates", "save", "poet", "--system", "You write haiku.")
    monkeypatch.setattr("click.edit", lambda *a, **k: 'system = "unclosed')
    bad = run("templates", "edit", "poet")
    assert bad.exit_code != 0 and "your edit is in" in bad.stderr
    assert (home / "templates" / "poet.toml").read_text() == 'system = "You write haiku."\n'
    assert (home / "templates" / ".poet.rejected.toml").read_text() == 'system = "unclosed'
    monkeypatch.setattr("click.edit", lambda *a, **k: 'system = "You write limericks."\n')
    assert run("templates", "edit", "poet").exit_code == 0
    assert run("templates", "list").stdout.startswith("poet : system: You write limericks.")
    assert run("templates", "list").stdout.count("\n") == 1  # the rejected copy is not listed


def test_ask_with_a_template_sends_its_system_prompt_and_options(
    home: Path, model: ScriptedBackend
) -> None:
    run(
        "templates", "save", "editor", "--system", "You are a copy editor.",
        "--prompt", "Fix: $input", "-o", "temperature", "0.3", "-o", "max_tokens", "9",
    )  # fmt: skip
    result = run("ask", "--json", "-t", "editor", "teh cat")
    assert result.exit_code == 0, result.output
    messages, options = model.calls[-1]
    assert messages[0] == {"role": "system", "content": "You are a copy editor."}
    assert messages[-1]["content"].startswith("Fix: teh cat")
    assert (options.temperature, options.max_tokens) == (0.3, 9)
    # -o and flags win over the template's options; --system over its system prompt.
    run("ask", "-t", "editor", "-o", "temperature", "0", "--max-tokens", "5", "-s", "Be kind.", "x")
    messages, options = model.calls[-1]
    assert (options.temperature, options.max_tokens) == (0.0, 5)
    assert messages[0]["content"] == "Be kind."
    # Piped text is the input too.
    run("ask", "-t", "editor", "-", stdin="piped words\n")
    assert model.calls[-1][0][-1]["content"].startswith("Fix: piped words")
    calls = len(model.calls)
    empty = run("ask", "-t", "editor")  # its prompt needs $input: nothing was given
    assert empty.exit_code == 2 and "the prompt is empty" in empty.stderr
    run("templates", "save", "joke", "--system", "You are funny.", "--prompt", "Tell a joke.")
    assert run("ask", "-t", "joke").exit_code == 0  # no $input: no question needed
    assert len(model.calls) == calls + 1
    assert model.calls[-1][0][-1]["content"].startswith("Tell a joke.")
    cid = json.loads(result.stdout)["conversation_id"]
    with sqlite3.connect(home / "memory.db") as db:
        system = db.execute("SELECT system_prompt FROM conversations WHERE id = ?", [cid])
        assert system.fetchone()[0] == "You are a copy editor."


def test_ask_template_errors_are_one_line(home: Path, model: ScriptedBackend) -> None:
    missing = run("ask", "-t", "nope", "hi")
    assert missing.exit_code == 1
    assert missing.stderr.strip().startswith("error: no template named 'nope'; none is saved")
    run("templates", "save", "poet", "--system", "You write haiku.")
    assert "saved templates: poet" in run("ask", "-t", "nope", "hi").stderr
    bad = run("templates", "save", "hot", "--system", "x", "-o", "temperature", "hot")
    assert bad.exit_code == 2 and "temperature must be a number" in bad.stderr
    assert not (home / "templates" / "hot.toml").exists()
    assert model.calls == []


def test_ask_with_a_template_on_the_real_model(home: Path) -> None:
    saved = assistant(
        "templates", "save", "short", "--system", "Answer in one short sentence.",
        "--prompt", "Question: $input", "-o", "max_tokens", "24", home=home,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    result = assistant("ask", "--json", "-t", "short", *GREEDY, "What is a cat?", home=home)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] and data["thinking"] is None
    with sqlite3.connect(home / "memory.db") as db:
        (system,) = db.execute("SELECT system_prompt FROM conversations").fetchone()
        (question,) = db.execute("SELECT content FROM messages WHERE role = 'user'").fetchone()
    assert (system, question) == ("Answer in one short sentence.", "Question: What is a cat?")
    assert_one_line_error(assistant("ask", "-t", "long", "hi", home=home), "saved templates: short")


def test_edit_of_a_file_that_is_not_utf8_is_a_clear_error(home: Path) -> None:
    (home / "templates").mkdir(parents=True, exist_ok=True)
    (home / "templates" / "latin.toml").write_bytes(b'system = "caf\xe9"\n')
    result = run("templates", "edit", "latin")
    assert result.exit_code != 0 and "is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.output
