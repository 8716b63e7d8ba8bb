"""``/persona``: a saved template (``assistant templates``) applied to the shown conversation.

``/persona`` alone lists the saved ones; ``/persona NAME`` gives the conversation the
template's system prompt, its sampling options (as the conversation's own settings, like
``/set``: those it does not name go back to the defaults) and its mode; ``/persona none``
removes the system prompt and the settings. The template's prompt (``$input``) is for
``assistant ask -t``; a model it names is offered, not loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tui.conversation_commands import NONE_WORDS, ConversationHost

if TYPE_CHECKING:  # loaded on first use: the app starts without them
    from assistant.templates import TemplateStore


class PersonaHost(ConversationHost, Protocol):
    """What /persona needs of the chat screen."""

    @property
    def mode(self) -> str:
        """How the shown conversation is answered: "chat", "documents" or "agent"."""

    def set_mode(self, mode: str) -> None:
        """Answer in ``mode`` from now on (stored with the conversation)."""


def _first_line(text: str | None, limit: int = 70) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class PersonaCommands:
    """``/persona``, working through the chat screen's :class:`PersonaHost`."""

    def __init__(self, host: PersonaHost) -> None:
        self.host = host

    def persona(self, argument: str) -> bool:
        """List the personas, or apply one (``none`` removes the one applied)."""
        from assistant.errors import AssistantError
        from assistant.templates import TemplateStore

        host = self.host
        store = host.store
        if store is None:
            host.notify("the memory database is still opening", severity="warning")
            return False
        templates = TemplateStore.for_home(host.config.home)
        name = argument.strip()
        if not name:
            host.add_note(self.listing(templates))
            return True
        if name.lower() in NONE_WORDS:
            return self._remove()
        try:
            template = templates.get(name)
        except AssistantError as exc:  # missing (the saved ones are listed) or broken
            host.notify(str(exc), severity="error", timeout=10, markup=False)
            return False
        from assistant.memory.conversation_settings import ConversationSettings, apply_persona

        cid = host.ensure_conversation()
        settings = ConversationSettings.from_mapping(template.options)
        apply_persona(store, cid, template.system, settings, keep_prompt=not template.system)
        said = ["system prompt set"] if template.system else []
        said += [f"{k} {v:g}" for k, v in template.options.items()]
        if template.mode and template.mode != host.mode:
            host.set_mode(template.mode)
            said.append(f"{template.mode} mode")
        if template.model and template.model != host.config.model:
            said.append(f"it asks for model {template.model}: /model {template.model} loads it")
        host.notify(f"persona {template.name}: {'; '.join(said) or 'applied'}", markup=False)
        host.update_budget()
        return True

    def _remove(self) -> bool:
        from assistant.memory.conversation_settings import ConversationSettings, apply_persona

        host, store = self.host, self.host.store
        cid = host.conversation_id
        if store is None or cid is None:
            host.notify("no persona here: this conversation is new", severity="warning")
            return False
        apply_persona(store, cid, None, ConversationSettings())
        host.notify("persona removed: no system prompt, default sampling")
        host.update_budget()
        return True

    def listing(self, templates: TemplateStore) -> str:
        """The saved personas as a Markdown note."""
        from assistant.errors import ConfigError

        lines = ["**Personas** (saved templates)", ""]
        names = templates.names()
        for name in names:
            try:
                template = templates.get(name)
            except ConfigError as exc:
                lines.append(f"- `{name}`: (broken) {_first_line(str(exc))}")
                continue
            lines.append(f"- `{name}`: {_first_line(template.system or template.prompt)}")
        if not names:
            lines.append("- (none yet)")
        lines += [
            "",
            "`/persona NAME` applies one, `/persona none` removes it. Save one with "
            "`assistant templates save NAME --system TEXT`.",
        ]
        return "\n".join(lines)
