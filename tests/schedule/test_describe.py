"""describe(): plain English for every kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tickwork.schedule import parse_schedule


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("* * * * *", "Every minute"),
        ("* * * * * *", "Every second"),
        ("*/5 * * * *", "Every 5 minutes"),
        ("0-59/5 * * * *", "Every 5 minutes"),
        ("0 * * * *", "Every hour"),
        ("@hourly", "Every hour"),
        ("15 * * * *", "At minute 15 of every hour"),
        ("15,45 * * * *", "At minutes 15 and 45 of every hour"),
        ("1-5 * * * *", "Every minute from minute 1 through 5"),
        ("0 */2 * * *", "Every 2 hours"),
        ("30 */2 * * *", "Every 2 hours, at minute 30"),
        ("0 9-17 * * *", "Every hour from 09:00 through 17:00"),
        ("0 3-17/2 * * *", "Every 2 hours from 03:00 through 17:00"),
        ("0 2 * * *", "At 02:00"),
        ("0 0,12 * * *", "At 00:00 and 12:00"),
        ("0 30 9 * * *", "At 09:30"),
        ("15 30 9 * * *", "At 09:30:15"),
        ("5 0 * * * *", "At minute 0, second 5 of every hour"),
        ("*/10 * * * * *", "Every 10 seconds"),
        ("30 2 * * 1-5", "At 02:30, Monday through Friday"),
        ("0 9 * * 1,3,5", "At 09:00, on Monday, Wednesday and Friday"),
        ("@weekly", "At 00:00, on Sunday"),
        ("*/10 9-17 * * 1-5", "Every 10 minutes, between 09:00 and 17:59, Monday through Friday"),
        ("0 0 1 * *", "At 00:00, on day 1 of the month"),
        ("0 0 1,15 * *", "At 00:00, on days 1 and 15 of the month"),
        ("0 0 */2 * *", "At 00:00, every 2 days"),
        ("0 0 L * *", "At 00:00, on the last day of the month"),
        ("0 18 LW * *", "At 18:00, on the last weekday of the month"),
        ("0 9 15W * *", "At 09:00, on the weekday nearest day 15 of the month"),
        ("0 0 * * 5L", "At 00:00, on the last Friday of the month"),
        ("0 0 * * MON#2", "At 00:00, on the second Monday of the month"),
        ("30 4 1,15 * 5", "At 04:30, on days 1 and 15 of the month or on Friday"),
        ("0 0 */10 * 5", "At 00:00, every 10 days, if the day is also Friday"),
        (
            "0 0 13 * */2",
            "At 00:00, on day 13 of the month, if the day is also Sunday, Tuesday, "
            "Thursday or Saturday",
        ),
        ("0 0 13 * 0,6", "At 00:00, on day 13 of the month or on Sunday and Saturday"),
        ("0 0 1 1 *", "At 00:00, on day 1 of the month, in January"),
        ("0 0 1 jan-mar *", "At 00:00, on day 1 of the month, January through March"),
        ("0 0 1 */3 *", "At 00:00, on day 1 of the month, every 3 months"),
        (
            "*/7 3-17/2 * 1,6,12 *",
            "Every 7 minutes, every 2 hours from 03:00 through 17:59, "
            "in January, June and December",
        ),
    ],
)
def test_cron(expr: str, text: str) -> None:
    assert parse_schedule(expr).describe() == text


def test_cron_names_the_zone_unless_utc() -> None:
    assert (
        parse_schedule("30 2 * * 1-5", "Europe/Paris").describe()
        == "At 02:30, Monday through Friday (Europe/Paris)"
    )


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("5m", "Every 5 minutes"),
        ("every hour", "Every hour"),
        ("1h30m", "Every 1 hour and 30 minutes"),
        ("PT30S", "Every 30 seconds"),
        ("1d", "Every day at 09:00, from 2026-01-05 (Europe/Paris)"),
        ("2w", "Every 2 weeks at 09:00, from 2026-01-05 (Europe/Paris)"),
        ("1mo", "Every month on day 5 at 09:00, from 2026-01-05 (Europe/Paris)"),
        # A step with an exact part moves the time of day, one with days the day of
        # the month: neither is named as if it stayed.
        ("1d2h", "Every 1 day and 2 hours, from 2026-01-05 09:00 (Europe/Paris)"),
        ("P1DT2H", "Every 1 day and 2 hours, from 2026-01-05 09:00 (Europe/Paris)"),
        ("1mo1d", "Every 1 month and 1 day at 09:00, from 2026-01-05 (Europe/Paris)"),
        ("1mo12h", "Every 1 month and 12 hours, from 2026-01-05 09:00 (Europe/Paris)"),
    ],
)
def test_interval(expr: str, text: str) -> None:
    s = parse_schedule(expr, "Europe/Paris", start_at="2026-01-05T09:00:00")
    assert s.describe() == text


def test_once_and_manual() -> None:
    assert (
        parse_schedule("2026-12-25T09:00", "Europe/Paris").describe()
        == "Once at 2026-12-25 09:00 (Europe/Paris)"
    )
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_schedule("in 90s", now=now).describe() == "Once at 2026-01-01 12:01:30 (UTC)"
    assert parse_schedule("manual").describe() == "Manually triggered only (never fires by itself)"
