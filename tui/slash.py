"""What each slash command does (also reached from the command palette)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tui.commands import SlashCommand
from tui.screens.confirm import ConfirmScreen
from tui.screens.edit_text import EditTextScreen
from tui.screens.pick import PickScreen

if TYPE_CHECKING:
    from tui.app import ChatApp

NONE_WORDS = ("none", "off", "-")


class SlashCommandsMixin:
    """``/new``, ``/model``, ``/system``, ... as methods of :class:`~tui.app.ChatApp`."""

    def run_slash(self: ChatApp, command: SlashCommand, argument: str) -> bool:
        """Run a command; return whether it was accepted (then the prompt is cleared)."""
        handler = getattr(self, f"slash_{command.name}")
        return bool(handler(argument))

    def palette_command(self: ChatApp, command: SlashCommand) -> None:
        """From the palette: run it, or put it in the prompt when it needs an argument."""
        if command.argument and not command.argument.startswith("["):
            self.prompt_box.set_text(f"/{command.name} ")
            self.prompt_box.focus()
            return
        self.run_slash(command, "")

    def _need_store(self: ChatApp) -> bool:
        if self.store is None:
            self.notify("the memory database is still opening", severity="warning")
            return False
        return True

    def slash_new(self: ChatApp, argument: str) -> bool:
        """Start a new conversation."""
        self.action_new_conversation()
        return True

    def slash_help(self: ChatApp, argument: str) -> bool:
        """List the commands and keys in a note."""
        self.add_note(self.help_text())
        return True

    def slash_model(self: ChatApp, argument: str) -> bool:
        """Switch model (with a picker when no name is given)."""
        return self._switch_model("model", argument)

    def slash_adapter(self: ChatApp, argument: str) -> bool:
        """Switch LoRA adapter (with a picker when no name is given)."""
        return self._switch_model("adapter", argument)

    def _switch_model(self: ChatApp, kind: str, name: str) -> bool:
        if self.live is not None:
            self.notify("wait for the reply to finish (or press Esc)", severity="warning")
            return False
        if name:
            self.use_model(kind, name)
            return True
        from assistant.errors import AssistantError
        from assistant.registry import ModelRegistry

        try:
            entries = [e for e in ModelRegistry(self.config.home).list() if e.kind == kind]
        except AssistantError as exc:
            self.notify(str(exc), severity="error")
            return False
        choices = [(e.name, f"{e.name}  ({e.base or e.path.name})") for e in entries]
        if kind == "adapter":
            choices.insert(0, ("none", "none (the base model alone)"))
        if not choices:
            self.notify(
                f"no {kind}s registered; run `assistant models add PATH`", severity="warning"
            )
            return False

        def chosen(value: str | None) -> None:
            if value:
                self.use_model(kind, value)

        self.push_screen(PickScreen(f"Pick a {kind}", choices), chosen)
        return True

    def use_model(self: ChatApp, kind: str, name: str) -> None:
        """Load ``name`` as the model (adapter dropped) or as the adapter, in a worker."""
        if kind == "model":
            config = dataclasses.replace(self.config, model=name, adapter=None)
        else:
            adapter = None if name.lower() in NONE_WORDS else name
            config = dataclasses.replace(self.config, adapter=adapter)
        self.load_backend(config)

    def slash_compare(self: ChatApp, argument: str) -> bool:
        """Answer ``argument`` with the base model and with the adapter, side by side."""
        if not argument:
            self.notify("usage: /compare PROMPT", severity="warning")
            return False
        if self.backend is None or self.live is not None or self.comparing:
            self.notify("wait for the model (or the reply) to finish", severity="warning")
            return False
        if not self.config.adapter:
            self.notify(
                "no adapter is loaded: pick one with /adapter, then compare",
                severity="warning",
            )
            return False
        self.start_comparison(argument)
        return True

    def slash_train(self: ChatApp, argument: str) -> bool:
        """Mark (or unmark) this conversation for `assistant train prepare --marked`."""
        if not self._need_store() or self.conversation_id is None:
            if self.conversation_id is None:
                self.notify("no conversation yet: say something first", severity="warning")
            return False
        assert self.store is not None
        marked = not self.store.conversation(self.conversation_id).marked_for_training
        self.store.update_conversation(self.conversation_id, marked_for_training=int(marked))
        self.notify(
            "marked for training: `assistant train prepare --marked` will use it"
            if marked
            else "no longer marked for training"
        )
        return True

    def slash_system(self: ChatApp, argument: str) -> bool:
        """Set this conversation's system prompt (an editor when no text is given)."""
        if not self._need_store():
            return False
        assert self.store is not None
        if argument:
            self._save_system(argument)
            return True
        current = (
            self.store.conversation(self.conversation_id).system_prompt
            if self.conversation_id
            else self.config.system_prompt
        )

        def saved(value: str | None) -> None:
            if value is not None:
                self._save_system(value)

        self.push_screen(EditTextScreen("System prompt / persona", current or ""), saved)
        return True

    def _save_system(self: ChatApp, text: str) -> None:
        assert self.store is not None
        cid = self.ensure_conversation()
        value = None if text.strip().lower() in NONE_WORDS or not text.strip() else text.strip()
        self.store.update_conversation(cid, system_prompt=value)
        self.notify("system prompt saved" if value else "system prompt removed")
        self.update_budget()

    def slash_memory(self: ChatApp, argument: str) -> bool:
        """Show the memory of this conversation, or set its strategy."""
        if not self._need_store():
            return False
        assert self.store is not None
        from assistant.errors import ConfigError
        from assistant.memory.strategies import StrategySpec

        if argument:
            try:
                spec = StrategySpec.parse(argument)
            except ConfigError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return False
            self.store.update_conversation(self.ensure_conversation(), strategy=str(spec))
            self.notify(f"memory strategy: {spec}")
            self.update_budget()
            return True
        lines = ["**Memory**", ""]
        if self.conversation_id:
            conversation = self.store.conversation(self.conversation_id)
            lines.append(f"- strategy: `{conversation.strategy}`")
            summary = self.store.latest_summary(self.conversation_id)
            lines.append(f"- summary: {summary.content if summary else '(none yet)'}")
        else:
            lines.append(f"- strategy: `{self.config.memory_strategy}` (new conversation)")
        facts = self.store.facts()
        lines += ["", "**Facts** (say “remember that …” to add one)", ""]
        lines += [f"- {f.content}" for f in facts] or ["- (none)"]
        self.add_note("\n".join(lines))
        return True

    def slash_ingest(self: ChatApp, argument: str) -> bool:
        """Add files or folders to the documents, in a worker with progress."""
        if not argument:
            self.notify("say what to ingest: /ingest PATH", severity="warning")
            return False
        path = Path(argument).expanduser()
        if not path.exists() and not any(ch in argument for ch in "*?["):
            self.notify(f"no file or folder at {path}", severity="error")
            return False
        self.ingest_path(str(path))
        return True

    def slash_sources(self: ChatApp, argument: str) -> bool:
        """Toggle answering from documents (with the sources panel)."""
        self.mode = "chat" if self.mode == "documents" else "documents"
        self.status_bar.mode = self.mode
        from tui.widgets.sources_panel import SourcesPanel

        self.query_one(SourcesPanel).display = self.mode == "documents"
        self.notify(
            "answers now come from your documents, with sources"
            if self.mode == "documents"
            else "documents off: plain chat"
        )
        return True

    def slash_tools(self: ChatApp, argument: str) -> bool:
        """Toggle the agent (tools, with its steps shown under each reply)."""
        self.mode = "chat" if self.mode == "agent" else "agent"
        self.status_bar.mode = self.mode
        if self.mode == "agent":
            names = (
                ", ".join(t.name for t in self.tools)
                if self.tools is not None
                else ("calculator, clock, memory recall and the configured ones")
            )
            self.notify(f"tools on: {names}")
        else:
            self.notify("tools off: plain chat")
        return True

    def slash_export(self: ChatApp, argument: str) -> bool:
        """Save the conversation as Markdown under ``$ASSISTANT_HOME/exports``."""
        if not self._need_store() or self.conversation_id is None:
            self.notify("nothing to export yet", severity="warning")
            return False
        from assistant.memory.transfer import export_markdown

        assert self.store is not None
        target = (
            Path(argument).expanduser()
            if argument
            else (self.config.home / "exports" / f"{self.conversation_id}.md")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(export_markdown(self.store, self.conversation_id), encoding="utf-8")
        self.notify(f"saved {target}")
        return True

    def slash_rename(self: ChatApp, argument: str) -> bool:
        """Rename the shown conversation."""
        if self.conversation_id is None:
            self.notify("this conversation has no messages yet", severity="warning")
            return False
        self.rename_conversation(self.conversation_id, argument)
        return True

    def rename_conversation(self: ChatApp, conversation_id: str, title: str) -> None:
        """Set a title (asking for it when ``title`` is empty)."""
        assert self.store is not None
        store = self.store

        def save(value: str | None) -> None:
            if value:
                store.update_conversation(conversation_id, title=value)
                if conversation_id == self.conversation_id:
                    self.sub_title = value
                self.refresh_conversations()

        if title:
            save(title)
            return
        current = store.conversation(conversation_id).title
        self.push_screen(EditTextScreen("Title", current), save)

    def slash_delete(self: ChatApp, argument: str) -> bool:
        """Delete the shown conversation after asking."""
        if self.conversation_id is None:
            self.notify("this conversation has no messages yet", severity="warning")
            return False
        self.delete_conversation(self.conversation_id)
        return True

    def delete_conversation(self: ChatApp, conversation_id: str) -> None:
        """Ask, then delete a conversation (not one whose reply is being written)."""
        assert self.store is not None
        store = self.store
        if self.live is not None and self.live.conversation_id == conversation_id:
            self.notify("a reply is being written there; stop it first", severity="warning")
            return
        title = store.conversation(conversation_id).title or conversation_id

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            store.delete_conversation(conversation_id)
            if conversation_id == self.conversation_id:
                self.show_conversation(None)
            self.refresh_conversations()
            self.notify(f"deleted “{title}”")

        self.push_screen(
            ConfirmScreen(f"Delete “{title}” and all its messages?", yes="Delete", no="Keep"),
            answered,
        )
