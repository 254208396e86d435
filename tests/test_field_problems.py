"""``field_problems`` names every field a schedule build would refuse, each with the
words the build itself uses for it, so a form can show them all at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tickwork.errors import ScheduleError, ValidationError
from tickwork.validation import field_problems, new_schedule

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
GOOD: dict[str, Any] = {"task": "reports:daily", "schedule": "0 2 * * *", "timezone": "UTC"}
BAD: dict[str, Any] = {
    "schedule": "0 0 32 * *",
    "name": "N" * 1500,
    "data": [1],
    "start_at": "2026-13-01",
    "priority": 10**9,
    "overlap": "sometimes",
    "retry": {"max_attempts": 0, "delay": -1},
    "tags": ["ok", ""],
    "colour": "blue",
}


def build_error(changes: dict[str, Any]) -> tuple[str, str]:
    """(the field, the message) a build of ``changes`` over the good fields refuses."""
    with pytest.raises((ValidationError, ScheduleError)) as refused:
        new_schedule("s1", {**GOOD, **changes}, NOW)
    error = refused.value
    assert isinstance(error, ValidationError | ScheduleError)
    return error.field or "", str(error)


def test_every_bad_field_is_named_with_the_words_of_a_build() -> None:
    problems = field_problems({**GOOD, **BAD})
    assert set(problems) == {
        "schedule",
        "name",
        "data",
        "start_at",
        "priority",
        "overlap",
        "retry.max_attempts",
        "retry.delay",
        "tags",
        "colour",
    }
    for key, value in BAD.items():
        if key == "retry":
            for name, part in value.items():
                field, message = build_error({"retry": {name: part}})
                assert problems[field] == message
        else:
            field, message = build_error({key: value})
            assert problems[field] == message, key


def test_fields_are_checked_together_once_each_is_valid() -> None:
    assert field_problems(GOOD) == {}
    dates = {"start_at": "2026-05-02T00:00", "end_at": "2026-05-01T00:00"}
    assert field_problems({**GOOD, **dates}) == {"end_at": build_error(dates)[1]}
    # Instants are read in the zone given: 02:00 in Paris is 00:00 UTC in May.
    start = {"start_at": "2026-05-01T02:00", "end_at": "2026-05-01T01:00+00:00"}
    assert field_problems({**GOOD, "timezone": "Europe/Paris", **start}) == {}
    assert field_problems({**GOOD, **start}) == {"end_at": "end_at is before start_at"}
    # A bad zone is named; the instants are then read in the default one.
    assert set(field_problems({**GOOD, "timezone": "Mars/Olympus", **dates})) == {
        "timezone",
        "end_at",
    }
