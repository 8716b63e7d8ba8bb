"""Slash commands: the table shared by the prompt, ``/help`` and the command palette."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlashCommand:
    """One command: its name, its argument (if any) and a line of help."""

    name: str
    help: str
    argument: str = ""

    @property
    def usage(self) -> str:
        """``/name ARG`` as the user types it."""
        return f"/{self.name} {self.argument}".rstrip()


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("new", "Start a new conversation"),
    SlashCommand(
        "clear", "Start a new, empty conversation (like /new; the old one stays in the list)"
    ),
    SlashCommand("model", "Pick a model from the registry (or name one)", "[NAME]"),
    SlashCommand("adapter", "Pick a LoRA adapter for the model ('none' removes it)", "[NAME]"),
    SlashCommand(
        "compare", "Answer a prompt with the base model and the adapter side by side", "PROMPT"
    ),
    SlashCommand(
        "prefer", "Keep the last /compare as a preference pair: the better answer", "base|adapter"
    ),
    SlashCommand("train", "Mark this conversation for training an adapter (toggle)"),
    SlashCommand("system", "Edit this conversation's system prompt / persona", "[TEXT]"),
    SlashCommand(
        "persona",
        "Apply a saved template (system prompt, sampling, mode); alone: list them",
        "[NAME|none]",
    ),
    SlashCommand(
        "memory", "Show the memory (strategy, summary, facts) or set the strategy", "[STRATEGY]"
    ),
    SlashCommand(
        "set",
        "This conversation's sampling: /set alone lists it; /set NAME VALUE|default "
        "(temperature, top_p, top_k, seed, max_tokens)",
        "[NAME VALUE]",
    ),
    SlashCommand("ingest", "Add files or folders to your documents", "PATH"),
    SlashCommand(
        "sources",
        "List your documents; /sources remove PATH|ID drops one, /sources prune the missing",
        "[remove PATH|ID]",
    ),
    SlashCommand("documents", "Answer from your documents, with numbered sources (toggle)"),
    SlashCommand(
        "adapt",
        "Tune search to your documents in the background (trains the embedding model, "
        "re-embeds, switches only if it ranks better); resume finishes an interrupted one, "
        "revert goes back to the unadapted model",
        "[SECONDS|resume|revert]",
    ),
    SlashCommand("search", "Search chats, documents and remembered facts together", "QUERY"),
    SlashCommand(
        "tools",
        "Let the assistant use tools, showing each step (toggle); list: each tool, "
        "its source (built-in or MCP server) and whether it asks first",
        "[list]",
    ),
    SlashCommand(
        "export", "Save this conversation as Markdown (default: $ASSISTANT_HOME/exports/)", "[PATH]"
    ),
    SlashCommand("rename", "Rename this conversation", "[TITLE]"),
    SlashCommand("delete", "Delete this conversation (asks first)"),
    SlashCommand("regen", "Write the last reply again; the old one is kept (Ctrl+R)"),
    SlashCommand("edit", "Edit your last message and resend it; the old turn is kept", "[TEXT]"),
    SlashCommand(
        "versions",
        "List the versions of the last reply and of your last message; /versions N shows reply "
        "version N (Alt+Left/Right), /versions message N your message's (Alt+Up/Down)",
        "[message] [N]",
    ),
    SlashCommand("copy", "Copy the last reply; /copy N copies message N from the top", "[N]"),
    SlashCommand("good", "Rate the last reply good (preference data for training; again: clear)"),
    SlashCommand("bad", "Rate the last reply bad (again: clear)"),
    SlashCommand("help", "List the commands and keys"),
    SlashCommand("quit", "Quit the app (everything is already stored)"),
)
BY_NAME = {c.name: c for c in COMMANDS}


class UnknownCommandError(ValueError):
    """The text names no slash command."""


def parse_slash(text: str) -> tuple[SlashCommand, str] | None:
    """Split ``/name rest`` into its command and argument; None if ``text`` is not a command.

    Raises:
        UnknownCommandError: it starts with ``/`` but names no command.

    Example:
        >>> command, arg = parse_slash("/ingest ~/notes")
        >>> command.name, arg
        ('ingest', '~/notes')
    """
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    name, _, rest = stripped[1:].partition(" ")
    command = BY_NAME.get(name.lower())
    if command is None:
        names = ", ".join(f"/{c.name}" for c in COMMANDS)
        raise UnknownCommandError(f"no command /{name}; the commands are {names}")
    return command, rest.strip()
