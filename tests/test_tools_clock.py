"""The clock tool answers in the asked time zone, at a fixed instant in tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant.tools.clock import make_clock_tool, resolve_zone

INSTANT = datetime(2025, 7, 1, 12, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", "Tuesday 2025-07-01, 12:30:05 UTC (UTC+0000, ISO 2025-07-01T12:30:05+00:00)"),
        (
            "Europe/Paris",
            "Tuesday 2025-07-01, 14:30:05 CEST (UTC+0200, ISO 2025-07-01T14:30:05+02:00)",
        ),
        ("tokyo", "Tuesday 2025-07-01, 21:30:05 JST (UTC+0900, ISO 2025-07-01T21:30:05+09:00)"),
        (
            "america/new_york",
            "Tuesday 2025-07-01, 08:30:05 EDT (UTC-0400, ISO 2025-07-01T08:30:05-04:00)",
        ),
        (
            "Pacific/Kiritimati",
            "Wednesday 2025-07-02, 02:30:05 +14 (UTC+1400, ISO 2025-07-02T02:30:05+14:00)",
        ),
    ],
)
def test_clock_answers_in_the_named_zone(zone: str, expected: str) -> None:
    clock = make_clock_tool(now=lambda: INSTANT)
    assert clock.invoke({"time_zone": zone}) == expected


def test_clock_defaults_to_the_local_zone() -> None:
    clock = make_clock_tool(now=lambda: INSTANT)
    local = INSTANT.astimezone()
    assert clock.invoke({}).startswith(f"{local:%A} {local:%Y-%m-%d}, {local:%H:%M:%S}")
    assert clock.invoke({"time_zone": "local"}) == clock.invoke({})


def test_unknown_zone_gets_a_helpful_message() -> None:
    clock = make_clock_tool(now=lambda: INSTANT)
    assert clock.invoke({"time_zone": "Atlantis"}).startswith(
        "error: unknown time zone 'Atlantis'; use an IANA name"
    )
    assert resolve_zone("../../etc/passwd") is None


def test_real_clock_is_timezone_aware() -> None:
    answer = make_clock_tool().invoke({"time_zone": "UTC"})
    assert f"{datetime.now(UTC):%Y}" in answer and "UTC+0000" in answer
