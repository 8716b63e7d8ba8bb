"""Saved prompts and personas (simonw/llm's templates, aichat's roles): one TOML file each.

A template has a system prompt, an optional prompt in which ``$input`` stands for what the
user asks (``$$`` is a literal dollar), optional sampling options, an optional model and an
optional default mode. They live in ``$ASSISTANT_HOME/templates/NAME.toml``::

    system = "You are a terse copy editor."
    prompt = "Fix the grammar of: $input"
    model = "smollm2-135m"
    mode = "chat"

    [options]
    temperature = 0.2

``assistant ask -t NAME`` and the app's ``/persona NAME`` use them; ``assistant templates``
lists, shows, saves, edits and removes them.
"""

from __future__ import annotations

import os
import re
import string
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from assistant.errors import AssistantError, ConfigError
from assistant.paths import DataPaths

MODES = ("chat", "documents", "agent")  # assistant.responders.MODES, without its imports
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEYS = ("system", "prompt", "model", "mode", "options")
SUFFIX = ".toml"


class TemplateNotFoundError(AssistantError):
    """No template has that name."""


def check_name(name: str) -> str:
    """Return ``name`` if it can name a template file (no paths, no dot-dot).

    Raises:
        ConfigError: the name is empty, too long, or has characters other than letters,
            digits, ``_``, ``-`` and ``.`` (or starts with one of the last three).
    """
    if not _NAME.fullmatch(name) or ".." in name or name.endswith("."):
        raise ConfigError(
            f"bad template name {name!r}: use up to 64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def check_options(options: Mapping[str, Any]) -> dict[str, float | int]:
    """Validated sampling options (temperature, top_p, top_k, seed, max_tokens).

    Raises:
        ConfigError: an unknown option or a bad value, in one line.
    """
    from assistant.memory.conversation_settings import parse_setting

    checked: dict[str, float | int] = {}
    for name, raw in options.items():
        value = parse_setting(name, raw)
        if value is not None:
            checked[name.strip().lower().replace("-", "_")] = value
    return checked


@dataclass(frozen=True)
class Template:
    """One saved prompt / persona."""

    name: str
    system: str | None = None
    prompt: str | None = None
    options: dict[str, float | int] = field(default_factory=dict)
    model: str | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.mode is not None and self.mode not in MODES:
            raise ConfigError(
                f"template {self.name}: mode must be one of {', '.join(MODES)}, not {self.mode!r}"
            )
        if not (self.system or self.prompt):
            raise ConfigError(f"template {self.name}: give it a system prompt or a prompt")
        object.__setattr__(self, "options", check_options(self.options))

    @property
    def needs_input(self) -> bool:
        """Whether a question is needed: no prompt, or a prompt with ``$input``."""
        return not self.prompt or _mentions_input(self.prompt)

    def evaluate(self, text: str) -> str:
        """The prompt to send for the user's ``text``: the template's prompt with
        ``$input`` replaced, or ``text`` after it when it has no ``$input``."""
        if not self.prompt:
            return text
        if not _mentions_input(self.prompt):
            return "\n\n".join(p for p in (self.prompt, text) if p.strip())
        return string.Template(self.prompt).safe_substitute(input=text)

    def as_toml(self) -> str:
        """The template as its file holds it."""
        data: dict[str, Any] = {
            k: v
            for k, v in (
                ("system", self.system),
                ("prompt", self.prompt),
                ("model", self.model),
                ("mode", self.mode),
            )
            if v is not None
        }
        if self.options:
            data["options"] = dict(self.options)
        return tomli_w.dumps(data, multiline_strings=True)

    @classmethod
    def from_toml(cls, name: str, text: str, source: str = "") -> Template:
        """Parse a template file's text.

        Raises:
            ConfigError: not TOML, an unknown key, a value of the wrong type or a bad option.
        """
        where = source or f"template {name}"
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_KEYS)}"
            )
        for key in ("system", "prompt", "model", "mode"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{where}: {key} must be a string")
        options = data.get("options", {})
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: options must be a table ([options])")
        try:
            return cls(
                name=name,
                system=data.get("system"),
                prompt=data.get("prompt"),
                options=options,
                model=data.get("model"),
                mode=data.get("mode"),
            )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _mentions_input(prompt: str) -> bool:
    for match in string.Template.pattern.finditer(prompt):
        if (match.group("named") or match.group("braced")) == "input":
            return True
    return False


class TemplateStore:
    """The templates folder: one ``NAME.toml`` each, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_home(cls, home: Path) -> TemplateStore:
        """The templates of the data directory ``home``."""
        return cls(DataPaths(home).templates)

    def path(self, name: str) -> Path:
        """The file of template ``name`` (checked: it stays inside the folder)."""
        return self.directory / f"{check_name(name)}{SUFFIX}"

    def names(self) -> list[str]:
        """Every saved template's name, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name[: -len(SUFFIX)]
            for p in self.directory.glob(f"*{SUFFIX}")
            if p.is_file() and _NAME.fullmatch(p.name[: -len(SUFFIX)])
        )

    def exists(self, name: str) -> bool:
        """Whether template ``name`` is saved."""
        return self.path(name).is_file()

    def get(self, name: str) -> Template:
        """Load template ``name``.

        Raises:
            TemplateNotFoundError: none by that name (the message lists the saved ones).
            ConfigError: a bad name, or the file is not a valid template.
        """
        path = self.path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateNotFoundError(self._missing(name)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        return Template.from_toml(name, text, source=str(path))

    def _missing(self, name: str) -> str:
        names = self.names()
        known = (
            f"saved templates: {', '.join(names)}"
            if names
            else "none is saved yet; create one with `assistant templates save NAME --system TEXT`"
        )
        return f"no template named {name!r}; {known}"

    def save(self, template: Template) -> Path:
        """Write ``template`` (replacing one of that name) atomically; return its file."""
        return self.write_text(template.name, template.as_toml())

    def write_text(self, name: str, text: str) -> Path:
        """Write a template file's text atomically (checked first); return the file.

        Raises:
            ConfigError: ``text`` is not a valid template (nothing is written).
        """
        Template.from_toml(name, text)
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def remove(self, name: str) -> None:
        """Delete template ``name``.

        Raises:
            TemplateNotFoundError: none by that name.
        """
        path = self.path(name)
        if not path.is_file():
            raise TemplateNotFoundError(self._missing(name))
        path.unlink()
