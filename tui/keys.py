"""Configurable keybindings: ``keybindings = "stop=ctrl+c,escape; send=enter"``."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.errors import ConfigError

# Binding ids of the app (see ChatApp.BINDINGS) and their default keys.
APP_KEYS = {
    "stop": "escape",
    "new": "ctrl+n",
    "sidebar": "ctrl+b",
    "sources_panel": "ctrl+o",
    "focus_prompt": "ctrl+l",
    "quit": "ctrl+q",
}
# Keys of the prompt box itself.
PROMPT_KEYS = {
    "send": "enter",
    "newline": "shift+enter,ctrl+j",
}
DESCRIPTIONS = {
    "send": "send the message",
    "newline": "new line in the message",
    "stop": "stop the reply",
    "new": "new conversation",
    "sidebar": "show or hide the conversations",
    "sources_panel": "show or hide the sources",
    "focus_prompt": "back to the prompt",
    "quit": "quit",
}


@dataclass(frozen=True)
class KeyMap:
    """Keys for the app's bindings (a Textual keymap) and for the prompt box."""

    app: dict[str, str] = field(default_factory=lambda: dict(APP_KEYS))
    send: tuple[str, ...] = ("enter",)
    newline: tuple[str, ...] = ("shift+enter", "ctrl+j")

    def describe(self) -> dict[str, str]:
        """What each action does -> its keys, for ``/help``."""
        keys = {**self.app, "send": ",".join(self.send), "newline": ",".join(self.newline)}
        return {DESCRIPTIONS[k]: v for k, v in keys.items()}


def _keys(value: str) -> tuple[str, ...]:
    return tuple(k.strip().lower() for k in value.split(",") if k.strip())


def parse_keymap(text: str | None) -> KeyMap:
    """Parse ``id=key[,key]; id=key`` over the defaults.

    Raises:
        ConfigError: an unknown id, or an entry without keys.

    Example:
        >>> parse_keymap("stop=ctrl+c; newline=ctrl+j").newline
        ('ctrl+j',)
    """
    app = dict(APP_KEYS)
    prompt = dict(PROMPT_KEYS)
    for entry in (text or "").split(";"):
        if not entry.strip():
            continue
        name, _, value = entry.partition("=")
        name = name.strip().lower()
        if name not in app and name not in prompt:
            valid = ", ".join([*APP_KEYS, *PROMPT_KEYS])
            raise ConfigError(f"unknown key binding {name!r} in keybindings; valid: {valid}")
        if not _keys(value):
            raise ConfigError(f"key binding {name!r} needs at least one key, e.g. {name}=ctrl+x")
        (app if name in app else prompt)[name] = ",".join(_keys(value))
    return KeyMap(app, _keys(prompt["send"]), _keys(prompt["newline"]))
