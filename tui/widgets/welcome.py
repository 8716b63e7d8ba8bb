"""The note shown on first start: the model, the mode, and the keys to get going."""

from __future__ import annotations

from textual.widgets import Markdown

from tui.keys import KeyMap


def welcome_markdown(model: str, mode: str, keys: KeyMap) -> str:
    """What a new user needs first: what answers, how to send, where the help is."""
    from tui.help import key_display

    app = keys.app
    return "\n".join(
        [
            "**Welcome to assistant**: a local model, offline, in your terminal.",
            "",
            f"- Model: `{model}` · mode: {mode} (`/model` to switch, `/tools` for tools, "
            "`/documents` to answer from your files after `/ingest PATH`)",
            f"- `{key_display(','.join(keys.send))}` sends · "
            f"`{key_display(','.join(keys.newline))}` adds a line · "
            f"`{key_display(app['stop'])}` stops a reply",
            f"- `/help` lists every command and key · `{key_display('ctrl+p')}` the command "
            f"palette · `{key_display(app['sidebar'])}` your conversations · "
            f"`{key_display(app['quit'])}` or `/quit` quits",
            "- `/set temperature 0.2` (and top_p, top_k, seed, max_tokens) for this "
            "conversation · `/system TEXT` its persona",
            "",
            "Everything is stored as you go; the next start reopens your last conversation.",
        ]
    )


class WelcomeNote(Markdown):
    """The first-start note; not a message (not stored, gone once you send one)."""

    DEFAULT_CSS = """
    WelcomeNote { margin: 1 1; padding: 0 1; border-left: thick $primary; }
    """
