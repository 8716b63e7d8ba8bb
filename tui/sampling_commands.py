"""``/set``: the shown conversation's sampling settings (temperature, top_p, top_k, seed,
max_tokens), stored with it (see :mod:`assistant.memory.conversation_settings`).

``/set`` alone lists them; ``/set NAME VALUE`` sets one for this conversation's next turns;
``/set NAME default`` goes back to the configured value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.conversation_commands import ConversationHost

if TYPE_CHECKING:
    from assistant.config import Config

USAGE = "usage: /set NAME VALUE (or /set NAME default); /set alone lists the settings"


def shown_value(value: float | int) -> str:
    """A setting's value as the user typed it (0.2, not 0.200000)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def configured(config: Config) -> dict[str, str]:
    """What each setting is when a conversation leaves it unset, as shown."""
    return {
        "temperature": f"{config.temperature:g}",
        "top_p": f"{config.top_p:g}",
        "top_k": str(config.top_k) if config.top_k is not None else "the backend's (40)",
        "seed": str(config.seed) if config.seed is not None else "random",
        "max_tokens": str(config.max_tokens),
    }


class SamplingCommands:
    """``/set``, working through the chat screen's :class:`ConversationHost`."""

    def __init__(self, host: ConversationHost) -> None:
        self.host = host

    def set(self, argument: str) -> bool:
        """List the settings, or set (or reset) one of them."""
        from assistant.errors import ConfigError
        from assistant.memory.conversation_settings import parse_setting, update_settings

        host = self.host
        store = host.store
        if store is None:
            host.notify("the memory database is still opening", severity="warning")
            return False
        if not argument:
            host.add_note(self.listing())
            return True
        name, _, raw = argument.partition(" ")
        if not raw.strip():
            host.notify(USAGE, severity="warning", markup=False)
            return False
        try:
            value = parse_setting(name, raw.strip())  # validated before anything is stored
        except ConfigError as exc:
            host.notify(str(exc), severity="error", timeout=10, markup=False)
            return False
        key = name.strip().lower().replace("-", "_")
        cid = host.ensure_conversation()
        update_settings(store, cid, {key: value})
        if value is None:
            shown = configured(host.config)[key]
            host.notify(f"{key}: back to the default ({shown})", markup=False)
        else:
            host.notify(f"{key} = {shown_value(value)} for this conversation", markup=False)
        if key == "max_tokens":
            host.update_budget()  # the reply reserve changed
        return True

    def listing(self) -> str:
        """The settings of the shown conversation, as a Markdown note."""
        from assistant.memory.conversation_settings import NAMES, load_settings

        host = self.host
        own = {}
        if host.store is not None and host.conversation_id is not None:
            own = load_settings(host.store, host.conversation_id).values()
        defaults = configured(host.config)
        lines = ["**Sampling settings of this conversation**", ""]
        for name in NAMES:
            if name in own:
                lines.append(f"- `{name}` = {shown_value(own[name])}")
            else:
                lines.append(f"- `{name}`: default ({defaults[name]})")
        lines += ["", "`/set NAME VALUE` sets one, `/set NAME default` resets it."]
        return "\n".join(lines)
