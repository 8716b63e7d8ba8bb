"""The ``/help`` text, made from the tables it describes so it cannot go stale: the slash
commands (:data:`tui.commands.COMMANDS`), the key map, and the ``BINDINGS`` of the app, the
chat screen and every widget on it."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App
from textual.binding import Binding
from textual.widgets import TextArea

from tui.commands import COMMANDS
from tui.keys import DESCRIPTIONS, KeyMap

KEY_NAMES = {
    "escape": "Esc",
    "delete": "Del",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "ctrl": "Ctrl",
    "shift": "Shift",
    "alt": "Alt",
    "super": "Super",
}
# Where a widget's keys work, by class name (others: the class's first docstring line).
PLACES = {
    "ChatScreen": "Anywhere",
    "PromptInput": "In the prompt box",
    "ConversationList": "In the conversations list (Ctrl+B)",
    "SourcesPanel": "In the sources panel (Ctrl+O)",
    "ConfirmScreen": "In a yes/no question",
    "EditTextScreen": "In the text editor (/system, renaming)",
    "PickScreen": "In a picker (/model, /adapter)",
}
# The prompt box's recall keys are cursor keys with a meaning at the first/last line.
RECALL = [
    ("Up", "on the first line: the previous prompt sent (again: earlier ones)"),
    ("Down", "on the last line: the next prompt recalled, then an empty box"),
]


def key_display(keys: str) -> str:
    """``"ctrl+n,escape"`` as ``"Ctrl+N / Esc"``."""
    shown = []
    for key in keys.split(","):
        parts = [KEY_NAMES.get(p, p.upper() if len(p) == 1 else p.title()) for p in key.split("+")]
        shown.append("+".join(parts))
    return " / ".join(shown)


def own_bindings(cls: type) -> list[Binding]:
    """The bindings ``cls`` and its bases in this package declare (subclass first)."""
    found: list[Binding] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("tui."):
            continue
        for item in klass.__dict__.get("BINDINGS", []):
            binding = item if isinstance(item, Binding) else Binding(*item)
            if binding.key not in {b.key for b in found}:
                found.append(binding)
    return found


def _keys_of(binding: Binding, keys: KeyMap) -> str:
    return keys.app.get(binding.id, binding.key) if binding.id else binding.key


def _editing(keys: KeyMap) -> list[tuple[str, str]]:
    """The text area's own editing keys, less those the prompt box gives another use."""
    taken = {k for group in keys.prompt().values() for k in group}
    rows = []
    for binding in TextArea.BINDINGS:
        assert isinstance(binding, Binding)
        free = [k for k in binding.key.split(",") if k not in taken]
        if free and binding.description:
            rows.append((key_display(",".join(free)), binding.description.lower()))
    return rows


def key_sections(keys: KeyMap, widgets: Iterable[type]) -> list[tuple[str, list[tuple[str, str]]]]:
    """``(place, [(keys, what they do)])`` for every key of the app."""
    anywhere = [
        (key_display(keys.app["quit"]), DESCRIPTIONS["quit"]),
        (key_display(App.COMMAND_PALETTE_BINDING), "command palette: every command, searchable"),
        ("Tab / Shift+Tab", "move between the prompt, the conversations and the sources"),
    ]
    sections: dict[str, list[tuple[str, str]]] = {"Anywhere": anywhere}
    prompt_rows = [(key_display(",".join(v)), DESCRIPTIONS[k]) for k, v in keys.prompt().items()]
    sections["In the prompt box"] = prompt_rows + RECALL
    for cls in widgets:
        place = PLACES.get(cls.__name__) or (cls.__doc__ or cls.__name__).splitlines()[0]
        for binding in own_bindings(cls):
            what = DESCRIPTIONS.get(binding.id or "", "") or binding.description.lower()
            row = (key_display(_keys_of(binding, keys)), what)
            if row not in sections.setdefault(place, []):
                sections[place].append(row)
    sections["Editing in the prompt box"] = _editing(keys)
    return [(place, rows) for place, rows in sections.items() if rows]


def help_markdown(keys: KeyMap, widgets: Iterable[type] = ()) -> str:
    """The ``/help`` note: every slash command, then every key, by where it works."""
    lines = ["**Commands**", ""]
    lines += [f"- `{c.usage}`: {c.help}" for c in COMMANDS]
    lines += ["", "**Keys**"]
    for place, rows in key_sections(keys, widgets):
        lines += ["", f"*{place}*", ""]
        lines += [f"- `{shown}`: {what}" for shown, what in rows]
    lines += [
        "",
        "Shift+Enter adds a line only in terminals that report it (kitty, WezTerm, foot, "
        "Ghostty); in tmux and most others it arrives as Enter. Ctrl+J always adds a line.",
    ]
    return "\n".join(lines)
