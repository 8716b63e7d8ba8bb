"""Per-conversation sampling settings: temperature, top_p, top_k, seed and max_tokens.

A conversation may set any of them (the app's ``/set temperature 0.2``, a persona's
options); what it leaves unset comes from the configuration. They are stored in the
``conversation_settings`` table (migration m004) and applied to every turn of that
conversation, wherever it is continued: the app, ``ask -c`` and ``history send``.

Example:
    >>> s = ConversationSettings().with_value("temperature", "0.2")
    >>> s.values()
    {'temperature': 0.2}
    >>> s.with_value("temperature", "default").values()
    {}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.backends.base import GenerationOptions
from assistant.errors import ConfigError

if TYPE_CHECKING:
    from assistant.memory.store import MemoryStore

TABLE = "conversation_settings"
# Words that reset a setting to the configured default.
DEFAULT_WORDS = ("default", "reset", "none", "unset")
# name -> (type, lowest, highest, how the range is said)
_RULES: dict[str, tuple[type, float, float | None, str]] = {
    "temperature": (float, 0.0, 2.0, "a number between 0 and 2 (0 = greedy)"),
    "top_p": (float, 0.0, 1.0, "a number between 0 and 1"),
    "top_k": (int, 0, None, "a whole number, 0 (off) or more"),
    "seed": (int, 0, 2**31 - 1, f"a whole number from 0 to {2**31 - 1}"),
    "max_tokens": (int, 1, 1_000_000, "a whole number of at least 1"),
}
NAMES: tuple[str, ...] = tuple(_RULES)


def parse_setting(name: str, raw: object) -> float | int | None:
    """The value ``raw`` gives setting ``name`` (None: back to the default).

    Raises:
        ConfigError: an unknown setting, or a value of the wrong type or out of range,
            said in one line (``temperature must be a number between 0 and 2 ...``).
    """
    key = name.strip().lower().replace("-", "_")
    rule = _RULES.get(key)
    if rule is None:
        raise ConfigError(f"unknown setting {name!r}; choose one of {', '.join(NAMES)}")
    kind, low, high, said = rule
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in DEFAULT_WORDS):
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        number: float | int
        if kind is float:
            number = float(raw) if isinstance(raw, int | float) else float(str(raw).strip())
        elif isinstance(raw, float):
            if not raw.is_integer():
                raise ValueError
            number = int(raw)
        else:
            number = raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{key} must be {said}, not {raw!r}") from None
    if number != number or number < low or (high is not None and number > high):  # NaN too
        raise ConfigError(f"{key} must be {said}, not {raw!r}")
    return number


@dataclass(frozen=True)
class ConversationSettings:
    """One conversation's sampling settings; None leaves the configured default."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    max_tokens: int | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> ConversationSettings:
        """Settings from ``{name: value}`` (e.g. a persona's options), each validated.

        Raises:
            ConfigError: an unknown name or a bad value.
        """
        settings = cls()
        for name, value in values.items():
            settings = settings.with_value(name, value)
        return settings

    def with_value(self, name: str, raw: object) -> ConversationSettings:
        """A copy with ``name`` set from ``raw`` ("default" resets it).

        Raises:
            ConfigError: an unknown name or a bad value.
        """
        change: dict[str, Any] = {name.strip().lower().replace("-", "_"): parse_setting(name, raw)}
        return dataclasses.replace(self, **change)

    def values(self) -> dict[str, Any]:
        """The settings this conversation sets (the rest are the defaults)."""
        return {n: v for n in NAMES if (v := getattr(self, n)) is not None}

    def merged(self, other: ConversationSettings) -> ConversationSettings:
        """These settings with those ``other`` sets on top."""
        return dataclasses.replace(self, **other.values())

    def apply(self, options: GenerationOptions) -> GenerationOptions:
        """``options`` with these settings in place of the defaults they set."""
        return dataclasses.replace(options, **self.values())


def load_settings(store: MemoryStore, conversation_id: str | None) -> ConversationSettings:
    """The stored settings of a conversation (none set for an unknown or new one)."""
    if conversation_id is None:
        return ConversationSettings()
    rows = list(
        store.db.query(f"SELECT * FROM {TABLE} WHERE conversation_id = ?", [conversation_id])
    )
    if not rows:
        return ConversationSettings()
    return ConversationSettings(**{n: rows[0][n] for n in NAMES})


def save_settings(
    store: MemoryStore, conversation_id: str, settings: ConversationSettings
) -> ConversationSettings:
    """Store ``settings`` as the conversation's (replacing what was there); return them."""
    from assistant.memory.facts import now

    row: dict[str, Any] = {"conversation_id": conversation_id, "updated_at": now()}
    row.update({n: getattr(settings, n) for n in NAMES})
    with store.write():
        store.db.table(TABLE).upsert(row, pk="conversation_id")
    return settings


def apply_persona(
    store: MemoryStore,
    conversation_id: str,
    system_prompt: str | None,
    settings: ConversationSettings,
    *,
    keep_prompt: bool = False,
) -> None:
    """Give a conversation a persona's system prompt and sampling in one transaction.

    A kill or an error part-way leaves the conversation with its old persona, never the
    new prompt with the old sampling. ``keep_prompt`` leaves the system prompt as it is (a
    persona that sets sampling only).
    """
    with store.write():
        if not keep_prompt:
            store.update_conversation(conversation_id, system_prompt=system_prompt)
        save_settings(store, conversation_id, settings)


def update_settings(
    store: MemoryStore, conversation_id: str, values: Mapping[str, object]
) -> ConversationSettings:
    """Set some of a conversation's settings (``"default"`` or None resets one); the rest
    stay. Everything is validated before anything is stored.

    Raises:
        ConfigError: an unknown name or a bad value (nothing is changed).
    """
    settings = load_settings(store, conversation_id)
    for name, value in values.items():
        settings = settings.with_value(name, value)
    return save_settings(store, conversation_id, settings)
