"""A token's lifetime (``--expires``, ``"expires"``): calendar months and years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tickwork.engine.tokens import parse_expiry
from tickwork.errors import ValidationError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("given", "now", "expires"),
    [
        ("1y", "2026-12-07T10:00:00+00:00", "2027-12-07T10:00:00+00:00"),
        ("1y", "2027-03-01T00:00:00+00:00", "2028-03-01T00:00:00+00:00"),  # across 29 Feb
        ("1y", "2028-02-29T12:00:00+00:00", "2029-02-28T12:00:00+00:00"),  # no 29 Feb then
        ("1mo", "2026-01-31T08:00:00+00:00", "2026-02-28T08:00:00+00:00"),
        ("P1Y2M3DT4H", "2026-12-07T10:00:00+00:00", "2028-02-10T14:00:00+00:00"),
        ("30d", "2026-12-07T10:00:00+00:00", "2027-01-06T10:00:00+00:00"),
        ("12h", "2026-12-07T10:00:00+00:00", "2026-12-07T22:00:00+00:00"),
        # The calendar of UTC, whatever the zone ``now`` is given in.
        ("1mo", "2026-01-31T23:30:00-01:00", "2026-03-01T00:30:00+00:00"),
    ],
)
def test_months_and_years_are_calendar_ones(given: str, now: str, expires: str) -> None:
    start = at(now)
    assert start + parse_expiry(given, start) == at(expires)


def test_a_lifetime_past_the_year_9999_is_refused_naming_expires() -> None:
    with pytest.raises(ValidationError, match="expires '8000y' is too long") as caught:
        parse_expiry("8000y", datetime(2026, 12, 7, tzinfo=UTC))
    assert caught.value.field == "expires"


def test_what_is_not_an_interval_is_refused_naming_expires() -> None:
    with pytest.raises(ValidationError, match=r"^expires: ") as caught:
        parse_expiry("soon", datetime(2026, 12, 7, tzinfo=timezone(timedelta(hours=2))))
    assert caught.value.field == "expires"
