"""The clock tool: the current date and time, in the local or a named time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from langchain_core.tools import BaseTool, StructuredTool

Now = Callable[[], datetime]


def _system_now() -> datetime:
    return datetime.now(UTC)


def resolve_zone(name: str) -> tzinfo | None:
    """Return the time zone called ``name`` (IANA name, "UTC" or "local"); None if unknown."""
    cleaned = name.strip().strip("'\"")
    if cleaned.lower() in ("", "local", "now", "here", "today"):
        return datetime.now().astimezone().tzinfo
    if cleaned.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    lowered = cleaned.replace(" ", "_").lower()
    for candidate in available_timezones():
        if candidate.lower() == lowered or candidate.lower().endswith("/" + lowered):
            return ZoneInfo(candidate)
    return None


def describe_time(moment: datetime, zone: tzinfo) -> str:
    """Format an aware datetime in ``zone`` as a sentence the model can quote."""
    local = moment.astimezone(zone)
    label = local.tzname() or str(zone)
    return (
        f"{local:%A} {local:%Y-%m-%d}, {local:%H:%M:%S} {label} "
        f"(UTC{local:%z}, ISO {local.isoformat(timespec='seconds')})"
    )


def make_clock_tool(now: Now = _system_now) -> BaseTool:
    """The clock as a LangChain tool; ``now`` returns an aware datetime (injectable for tests)."""

    def clock(time_zone: str = "local") -> str:
        """Current date, weekday and time. Input: a time zone like Europe/Paris, or local."""
        zone = resolve_zone(time_zone)
        if zone is None:
            return (
                f"error: unknown time zone {time_zone.strip()!r}; use an IANA name such as "
                "Europe/Paris, America/New_York or UTC"
            )
        return describe_time(now(), zone)

    return StructuredTool.from_function(clock, metadata={"gbnf_input": "[A-Za-z_/+-]{0,40}"})
