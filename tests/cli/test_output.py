"""How the CLI writes times and durations for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork.cli.output import relative, seconds, short, when


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0.0123, "0.012 s"),
        (3.46, "3.5 s"),
        (42, "42 s"),
        (125, "2m 05s"),
        (3720, "1h 02m"),
        (2 * 86400 + 3 * 3600 + 59, "2d 03h"),
    ],
)
def test_seconds(value: float | None, text: str) -> None:
    assert seconds(value) == text


def test_when_uses_the_given_zone_with_its_offset() -> None:
    t = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert when(t, "Europe/Paris") == "2026-07-01 09:00:00+02:00"
    assert when(t, "UTC") == "2026-07-01 07:00:00+00:00"
    assert when(None) == ""


def test_relative_and_short() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert relative(now + timedelta(minutes=5, seconds=3), now) == "in 5m 03s"
    assert relative(now - timedelta(seconds=12), now) == "12 s ago"
    assert relative(now, now) == "now"
    assert short("first line\nsecond", 60) == "first line"
    assert short("x" * 80, 10) == "x" * 9 + "…"
