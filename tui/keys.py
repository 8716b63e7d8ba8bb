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
    "documents_mode": "f4",
    "quit": "ctrl+q",
}
# Keys of the prompt box itself.
# Shift+Enter reaches the app only from terminals that report it (kitty, WezTerm, foot,
# Ghostty; not tmux or most xterm setups, where it is a plain Enter). Ctrl+J is a line
# feed in every terminal, so it always adds a line. Alt+Enter is sent as Esc+Enter, which
# Textual reads as Enter: it cannot be a newline key.
PROMPT_KEYS = {
    "send": "enter",
    "newline": "shift+enter,ctrl+j",
    "clear": "ctrl+u",
}
DESCRIPTIONS = {
    "send": "send the message",
    "newline": "new line in the message (Ctrl+J works in every terminal; Shift+Enter only "
    "where the terminal reports it)",
    "clear": "clear the prompt box",
    "stop": "stop the reply",
    "new": "new conversation",
    "sidebar": "show or hide the conversations",
    "sources_panel": "show or hide the sources",
    "focus_prompt": "back to the prompt",
    "documents_mode": "documents mode on or off (answers from your files, as /documents)",
    "quit": "quit",
}


@dataclass(frozen=True)
class KeyMap:
    """Keys for the app's bindings (a Textual keymap) and for the prompt box."""

    app: dict[str, str] = field(default_factory=lambda: dict(APP_KEYS))
    send: tuple[str, ...] = ("enter",)
    newline: tuple[str, ...] = ("shift+enter", "ctrl+j")
    clear: tuple[str, ...] = ("ctrl+u",)

    def prompt(self) -> dict[str, tuple[str, ...]]:
        """The prompt box's own keys: id -> keys."""
        return {"send": self.send, "newline": self.newline, "clear": self.clear}

    def describe(self) -> dict[str, str]:
        """What each action does -> its keys, for ``/help``."""
        keys = {**self.app, **{k: ",".join(v) for k, v in self.prompt().items()}}
        return {DESCRIPTIONS[k]: v for k, v in keys.items() if k in DESCRIPTIONS}


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
    return KeyMap(app, _keys(prompt["send"]), _keys(prompt["newline"]), _keys(prompt["clear"]))
