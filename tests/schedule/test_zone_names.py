"""Unknown zone names get the known one they most likely mean."""

from __future__ import annotations

import pytest

from tickwork import ScheduleError, parse_schedule
from tickwork.schedule.base import suggest_timezone


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("europe/paris", "Europe/Paris"),
        ("EUROPE/LONDON", "Europe/London"),
        ("america/argentina/buenos_aires", "America/Argentina/Buenos_Aires"),
        ("Europe/Pariss", "Europe/Paris"),
        ("utc", "UTC"),
    ],
)
def test_a_near_miss_is_suggested(given: str, meant: str) -> None:
    assert suggest_timezone(given) == meant
    with pytest.raises(ScheduleError) as err:
        parse_schedule("5m", timezone=given)
    assert str(err.value) == f"unknown time zone {given!r}: did you mean {meant}?"


def test_nothing_close_gets_no_suggestion() -> None:
    assert suggest_timezone("Nowhere/Special") is None
    with pytest.raises(ScheduleError) as err:
        parse_schedule("5m", timezone="Nowhere/Special")
    assert str(err.value) == "unknown time zone 'Nowhere/Special'"
