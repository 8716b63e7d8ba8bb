"""What each slash command does (also reached from the command palette).

:class:`SlashCommands` works through a :class:`ChatHost`, the few things of the chat
screen it needs, so it can be driven (and tested) without the rest of the screen. The
commands about the shown conversation are in :mod:`tui.conversation_commands`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from assistant.config import Config
from tui.commands import SlashCommand
from tui.conversation_commands import NONE_WORDS, ConversationCommands, ConversationHost
from tui.keys import KeyMap
from tui.persona_commands import PersonaCommands
from tui.sampling_commands import SamplingCommands
from tui.screens.pick import PickScreen
from tui.search_commands import SearchCommands, SearchHost
from tui.source_commands import SourceCommands, SourceHost
from tui.tool_commands import ToolCommands, ToolsHost
from tui.version_commands import VersionCommands, VersionHost


class ChatHost(ConversationHost, SourceHost, VersionHost, SearchHost, ToolsHost, Protocol):
    """What the slash commands need of the chat screen."""

    ready: bool  # the model is loaded
    keys: KeyMap
    tool_names: list[str] | None  # the agent's tools, when given

    @property
    def mode(self) -> str:
        """How the shown conversation is answered: "chat", "documents" or "agent"."""

    @property
    def comparing(self) -> bool:
        """/compare is writing its two answers."""

    def put_in_prompt(self, text: str) -> None:
        """Put ``text`` in the prompt box, to be completed and sent."""

    def set_mode(self, mode: str) -> None:
        """Answer in ``mode`` from now on (stored with the conversation)."""

    def load_model(self, config: Config) -> None:
        """Load the backend of ``config`` in a worker."""

    def start_comparison(self, prompt: str) -> None:
        """Answer ``prompt`` with the base model and the adapter, side by side."""

    def prefer_compared(self, which: str) -> str:
        """Store the last comparison as a preference pair; return what to tell the user."""

    def exit_app(self) -> None:
        """Quit the app."""

    def help_text(self) -> str:
        """The /help note: every command and every key of the screen."""


class SlashCommands:
    """``/new``, ``/model``, ``/sources``, ...: one method a command, named after it; each
    returns whether it was accepted. ``handlers`` maps every command to its method."""

    def __init__(self, host: ChatHost) -> None:
        self.host = host
        self.conversation = ConversationCommands(host)
        self.personas = PersonaCommands(host)  # /persona
        self.sampling = SamplingCommands(host)
        self.documents = SourceCommands(host)  # /ingest, /sources, /documents
        self.finder = SearchCommands(host)  # /search
        self.versions = VersionCommands(host)  # /regen, /edit, /versions, /copy, /good, /bad
        on = self.conversation
        self.handlers: dict[str, Callable[[str], bool]] = {
            "new": self.new,
            "clear": self.new,  # a fresh conversation, as in Claude Code / aichat
            "set": self.sampling.set,
            "quit": self.quit,
            "help": self.help,
            "model": self.model,
            "adapter": self.adapter,
            "compare": self.compare,
            "prefer": self.prefer,
            "sources": self.documents.sources,
            "documents": self.documents.documents,
            "tools": self.tools,
            "ingest": self.documents.ingest,
            "adapt": self.documents.adapt,
            "search": self.finder.search,
            "train": on.train,
            "system": on.system,
            "persona": self.personas.persona,
            "memory": on.memory,
            "export": on.export,
            "rename": on.rename,
            "delete": on.delete,
            "regen": self.versions.regen,
            "edit": self.versions.edit,
            "versions": self.versions.versions,
            "copy": self.versions.copy,
            "good": self.versions.good,
            "bad": self.versions.bad,
        }

    def run(self, command: SlashCommand, argument: str) -> bool:
        """Run a command; return whether it was accepted (then the prompt is cleared)."""
        return self.handlers[command.name](argument)

    def from_palette(self, command: SlashCommand) -> None:
        """Run it, or put it in the prompt when it needs an argument."""
        if command.argument and not command.argument.startswith("["):
            self.host.put_in_prompt(f"/{command.name} ")
            return
        self.run(command, "")

    def new(self, argument: str) -> bool:
        """Start a new conversation."""
        self.host.show_conversation(None)
        return True

    def help(self, argument: str) -> bool:
        """List the commands and keys in a note (made from their tables)."""
        self.host.add_note(self.host.help_text())
        return True

    def quit(self, argument: str) -> bool:
        """Quit (a reply being written is stored as interrupted)."""
        self.host.exit_app()
        return True

    # -- models ------------------------------------------------------------------------

    def model(self, argument: str) -> bool:
        """Switch model (with a picker when no name is given)."""
        return self._switch_model("model", argument)

    def adapter(self, argument: str) -> bool:
        """Switch LoRA adapter (with a picker when no name is given)."""
        return self._switch_model("adapter", argument)

    def _switch_model(self, kind: str, name: str) -> bool:
        host = self.host
        if host.live is not None:
            host.notify("wait for the reply to finish (or press Esc)", severity="warning")
            return False
        if name:
            self.use_model(kind, name)
            return True
        from assistant.errors import AssistantError
        from assistant.registry import ModelRegistry

        try:
            entries = [e for e in ModelRegistry(host.config.home).list() if e.kind == kind]
        except AssistantError as exc:
            host.notify(str(exc), severity="error", markup=False)
            return False
        choices = [(e.name, f"{e.name}  ({e.base or e.path.name})") for e in entries]
        if kind == "adapter":
            choices.insert(0, ("none", "none (the base model alone)"))
        if not choices:
            host.notify(
                f"no {kind}s registered; run `assistant models add PATH`", severity="warning"
            )
            return False

        def chosen(value: str | None) -> None:
            if value:
                self.use_model(kind, value)

        article = "an" if kind[0] in "aeiou" else "a"
        host.ask(PickScreen(f"Pick {article} {kind}", choices), chosen)
        return True

    def use_model(self, kind: str, name: str) -> None:
        """Load ``name`` as the model (adapter dropped) or as the adapter, in a worker."""
        config = self.host.config
        if kind == "model":
            config = dataclasses.replace(config, model=name, adapter=None)
        else:
            adapter = None if name.lower() in NONE_WORDS else name
            config = dataclasses.replace(config, adapter=adapter)
        self.host.load_model(config)

    def compare(self, argument: str) -> bool:
        """Answer ``argument`` with the base model and with the adapter, side by side."""
        host = self.host
        if not argument:
            host.notify("usage: /compare PROMPT", severity="warning")
            return False
        if not host.ready or host.live is not None or host.comparing:
            host.notify("wait for the model (or the reply) to finish", severity="warning")
            return False
        if not host.config.adapter:
            host.notify(
                "no adapter is loaded: pick one with /adapter, then compare", severity="warning"
            )
            return False
        host.start_comparison(argument)
        return True

    def prefer(self, argument: str) -> bool:
        """Keep the last /compare as a pair: the ``base`` or the ``adapter`` answer chosen."""
        from assistant.errors import AssistantError

        try:
            said = self.host.prefer_compared(argument.strip().lower())
        except AssistantError as exc:
            self.host.notify(str(exc), severity="warning", markup=False)
            return False
        self.host.notify(said, markup=False)
        return True

    # -- modes and documents -----------------------------------------------------------

    def tools(self, argument: str) -> bool:
        """Toggle the agent (tools, with its steps shown under each reply); ``/tools list``
        lists them (name, built-in or MCP server, whether each asks first)."""
        if argument.strip().lower() == "list":
            return ToolCommands(self.host).list()
        mode = "chat" if self.host.mode == "agent" else "agent"
        self.host.set_mode(mode)
        if mode == "agent":
            names = self.host.tool_names
            listed = ", ".join(names) if names is not None else None
            self.host.notify(
                f"tools on: {listed or 'calculator, clock, memory recall and the configured ones'}"
            )
        else:
            self.host.notify("tools off: plain chat")
        return True
