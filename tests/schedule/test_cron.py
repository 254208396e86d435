"""Cron: every construct, every error message, the day rule, macros and hashed H."""

from __future__ import annotations

from datetime import datetime

import pytest

from tickwork.schedule import CronSchedule, ScheduleError, compile_cron, parse_schedule


def values(expr: str, key: str | None = None) -> dict[str, list[int]]:
    spec = compile_cron(expr, key)
    return {
        "second": list(spec.seconds),
        "minute": list(spec.minutes),
        "hour": list(spec.hours),
        "dom": sorted(spec.dom_values),
        "month": list(spec.months),
        "dow": sorted(spec.dow_values),
    }


def nexts(expr: str, after: str, count: int = 1, tz: str = "UTC") -> list[str]:
    s = parse_schedule(expr, tz)
    t: datetime | None = datetime.fromisoformat(after)
    out = []
    for _ in range(count):
        assert t is not None
        t = s.next_after(t)
        assert t is not None
        out.append(t.isoformat())
    return out


@pytest.mark.parametrize(
    ("expr", "field", "expected"),
    [
        ("* * * * *", "minute", list(range(60))),
        ("*/15 * * * *", "minute", [0, 15, 30, 45]),
        ("5-10 * * * *", "minute", [5, 6, 7, 8, 9, 10]),
        ("5-30/10 * * * *", "minute", [5, 15, 25]),
        ("5/20 * * * *", "minute", [5, 25, 45]),
        ("1,2,40-42 * * * *", "minute", [1, 2, 40, 41, 42]),
        ("0-59/30,7 * * * *", "minute", [0, 7, 30]),
        ("*/100 * * * *", "minute", [0]),
        ("0 */6 * * *", "hour", [0, 6, 12, 18]),
        ("0 9-17/4 * * *", "hour", [9, 13, 17]),
        ("0 0 */10 * *", "dom", [1, 11, 21, 31]),
        ("0 0 1 JAN-MAR *", "month", [1, 2, 3]),
        ("0 0 1 jan,Jul,DEC *", "month", [1, 7, 12]),
        ("0 0 1 january,JUNE *", "month", [1, 6]),
        ("0 0 1 */4 *", "month", [1, 5, 9]),
        ("0 0 1 FEB/5 *", "month", [2, 7, 12]),
        ("0 0 * * mon-fri", "dow", [1, 2, 3, 4, 5]),
        ("0 0 * * Sun", "dow", [0]),
        ("0 0 * * 7", "dow", [0]),
        ("0 0 * * 0,7", "dow", [0]),
        ("0 0 * * 5-7", "dow", [0, 5, 6]),
        ("0 0 * * FRI-SUN", "dow", [0, 5, 6]),
        ("0 0 * * 5-0", "dow", [0, 5, 6]),
        ("0 0 * * */2", "dow", [0, 2, 4, 6]),
        ("0 0 * * 1/2", "dow", [0, 1, 3, 5]),  # 1,3,5,7: 7 is Sunday
        ("0 0 * * saturday", "dow", [6]),
        ("0 0 ? * MON", "dom", list(range(1, 32))),
        ("0 0 1 * ?", "dow", list(range(7))),
        ("*/10 * * * * *", "second", [0, 10, 20, 30, 40, 50]),
        ("15,45 0 * * * *", "second", [15, 45]),
        ("0 * * * *", "second", [0]),
    ],
)
def test_field_values(expr: str, field: str, expected: list[int]) -> None:
    assert values(expr)[field] == expected


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # L: last day of the month
        ("0 0 L * *", "2024-02-10T00:00:00+00:00", ["2024-02-29T00:00:00+00:00"]),
        ("0 0 L * *", "2023-02-10T00:00:00+00:00", ["2023-02-28T00:00:00+00:00"]),
        ("0 0 L * *", "2024-04-30T00:00:00+00:00", ["2024-05-31T00:00:00+00:00"]),
        # LW: last weekday; 2024-03-31 is a Sunday, 2024-08-31 a Saturday
        ("0 0 LW * *", "2024-03-01T00:00:00+00:00", ["2024-03-29T00:00:00+00:00"]),
        ("0 0 LW * *", "2024-08-01T00:00:00+00:00", ["2024-08-30T00:00:00+00:00"]),
        ("0 0 LW * *", "2024-07-01T00:00:00+00:00", ["2024-07-31T00:00:00+00:00"]),
        # nW: weekday nearest day n, never leaving the month
        ("0 0 15W * *", "2024-06-01T00:00:00+00:00", ["2024-06-14T00:00:00+00:00"]),  # Sat
        ("0 0 15W * *", "2024-09-01T00:00:00+00:00", ["2024-09-16T00:00:00+00:00"]),  # Sun
        ("0 0 15W * *", "2024-05-01T00:00:00+00:00", ["2024-05-15T00:00:00+00:00"]),  # Wed
        ("0 0 1W * *", "2024-05-31T00:00:00+00:00", ["2024-06-03T00:00:00+00:00"]),  # Sat 1st
        ("0 0 31W * *", "2024-03-01T00:00:00+00:00", ["2024-03-29T00:00:00+00:00"]),  # Sun 31st
        ("0 0 31W * *", "2024-04-01T00:00:00+00:00", ["2024-05-31T00:00:00+00:00"]),  # no 31st
        # nL: last weekday n of the month
        ("0 0 * * 5L", "2024-05-01T00:00:00+00:00", ["2024-05-31T00:00:00+00:00"]),
        ("0 0 * * FRIL", "2024-06-01T00:00:00+00:00", ["2024-06-28T00:00:00+00:00"]),
        ("0 0 * * 7L", "2024-06-01T00:00:00+00:00", ["2024-06-30T00:00:00+00:00"]),
        # n#k: k-th weekday n
        ("0 0 * * 1#2", "2024-05-01T00:00:00+00:00", ["2024-05-13T00:00:00+00:00"]),
        ("0 0 * * MON#1", "2024-05-01T00:00:00+00:00", ["2024-05-06T00:00:00+00:00"]),
        (
            "0 0 * * 1#5",
            "2024-05-01T00:00:00+00:00",
            ["2024-07-29T00:00:00+00:00", "2024-09-30T00:00:00+00:00"],
        ),
        ("0 0 * 2 1#5", "2024-01-01T00:00:00+00:00", ["2044-02-29T00:00:00+00:00"]),
        # Lists mixing the special forms
        (
            "0 0 1,L * *",
            "2024-02-01T00:00:00+00:00",
            ["2024-02-29T00:00:00+00:00", "2024-03-01T00:00:00+00:00"],
        ),
        (
            "0 0 * * 1#1,5L",
            "2024-05-01T00:00:00+00:00",
            ["2024-05-06T00:00:00+00:00", "2024-05-31T00:00:00+00:00"],
        ),
        # Day rule: neither starts with '*': either matches (13th or any Friday)
        (
            "0 0 13 * 5",
            "2024-09-01T00:00:00+00:00",
            ["2024-09-06T00:00:00+00:00", "2024-09-13T00:00:00+00:00", "2024-09-20T00:00:00+00:00"],
        ),
        # dom starts with '*': both must match (days 1, 11, 21, 31 that are Fridays)
        ("0 0 */10 * 5", "2024-01-01T00:00:00+00:00", ["2024-03-01T00:00:00+00:00"]),
        # '?' counts as '*' for the rule
        ("0 0 ? * 5", "2024-09-01T00:00:00+00:00", ["2024-09-06T00:00:00+00:00"]),
        ("0 0 13 * ?", "2024-09-01T00:00:00+00:00", ["2024-09-13T00:00:00+00:00"]),
        # dow starts with '*': both must match
        ("0 0 13 * */5", "2024-09-01T00:00:00+00:00", ["2024-09-13T00:00:00+00:00"]),
        # Macros
        ("@yearly", "2024-05-01T00:00:00+00:00", ["2025-01-01T00:00:00+00:00"]),
        ("@annually", "2024-05-01T00:00:00+00:00", ["2025-01-01T00:00:00+00:00"]),
        ("@monthly", "2024-05-01T00:00:00+00:00", ["2024-06-01T00:00:00+00:00"]),
        ("@weekly", "2024-05-01T00:00:00+00:00", ["2024-05-05T00:00:00+00:00"]),
        ("@daily", "2024-05-01T00:00:00+00:00", ["2024-05-02T00:00:00+00:00"]),
        ("@midnight", "2024-05-01T00:00:00+00:00", ["2024-05-02T00:00:00+00:00"]),
        ("@hourly", "2024-05-01T00:00:00+00:00", ["2024-05-01T01:00:00+00:00"]),
        ("@DAILY", "2024-05-01T00:00:00+00:00", ["2024-05-02T00:00:00+00:00"]),
        # Seconds
        (
            "*/20 * * * * *",
            "2024-05-01T00:00:05+00:00",
            ["2024-05-01T00:00:20+00:00", "2024-05-01T00:00:40+00:00"],
        ),
        ("30 59 23 31 12 *", "2024-05-01T00:00:00+00:00", ["2024-12-31T23:59:30+00:00"]),
        # Leap day
        ("0 0 29 2 *", "2024-03-01T00:00:00+00:00", ["2028-02-29T00:00:00+00:00"]),
        ("0 0 29 2 *", "2096-03-01T00:00:00+00:00", ["2104-02-29T00:00:00+00:00"]),
        # Whitespace and tabs
        ("  0\t12   * * *  ", "2024-05-01T00:00:00+00:00", ["2024-05-01T12:00:00+00:00"]),
    ],
)
def test_next_after_constructs(expr: str, after: str, expected: list[str]) -> None:
    assert nexts(expr, after, len(expected)) == expected


def test_next_after_is_strict_and_ignores_microseconds_before_a_fire() -> None:
    s = parse_schedule("0 12 * * *")
    noon = datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    assert s.next_after(noon) == datetime.fromisoformat("2024-05-02T12:00:00+00:00")
    just_before = datetime.fromisoformat("2024-05-01T11:59:59.999999+00:00")
    assert s.next_after(just_before) == noon


def test_next_after_accepts_any_zone_and_answers_in_the_schedule_zone() -> None:
    s = parse_schedule("0 9 * * *", "Europe/Paris")
    t = s.next_after(datetime.fromisoformat("2024-05-01T12:00:00+09:00"))
    assert t is not None
    assert t.isoformat() == "2024-05-01T09:00:00+02:00"
    assert str(t.tzinfo) == "Europe/Paris"


def test_start_at_is_inclusive() -> None:
    s = parse_schedule("0 12 * * *", start_at="2024-05-03T12:00:00+00:00")
    t = s.next_after(datetime.fromisoformat("2024-05-01T00:00:00+00:00"))
    assert t is not None and t.isoformat() == "2024-05-03T12:00:00+00:00"
    s = parse_schedule("0 12 * * *", start_at="2024-05-03T12:00:00.5+00:00")
    t = s.next_after(datetime.fromisoformat("2024-05-01T00:00:00+00:00"))
    assert t is not None and t.isoformat() == "2024-05-04T12:00:00+00:00"


def test_past_year_9999_is_none() -> None:
    s = parse_schedule("0 0 1 1 *")
    assert s.next_after(datetime.fromisoformat("9999-06-01T00:00:00+00:00")) is None


class TestHashed:
    def test_stable_for_a_key(self) -> None:
        # Pinned: changing these would move every hashed schedule of every user.
        assert values("H H * * *", "daily-report")["minute"] == [50]
        assert values("H H * * *", "daily-report")["hour"] == [14]
        assert values("H/15 * * * *", "daily-report")["minute"] == [5, 20, 35, 50]
        assert values("H H * * *", "daily-report") == values("H  H * * *", "daily-report")

    def test_spread_over_keys(self) -> None:
        minutes = {values("H * * * *", f"job-{i}")["minute"][0] for i in range(200)}
        assert len(minutes) > 40

    def test_ranges_and_steps(self) -> None:
        for i in range(100):
            key = f"k{i}"
            v = values("H(10-19) H(2-4) H * H", key)
            assert 10 <= v["minute"][0] <= 19
            assert 2 <= v["hour"][0] <= 4
            assert 1 <= v["dom"][0] <= 28  # exists in every month
            assert 0 <= v["dow"][0] <= 6
            step = values("H/20 H(0-11)/6 * * *", key)
            assert len(step["minute"]) == 3 and step["minute"][1] - step["minute"][0] == 20
            assert step["minute"][0] < 20
            assert len(step["hour"]) == 2 and step["hour"][0] < 6

    def test_key_goes_through_parse_schedule(self) -> None:
        a = parse_schedule("H * * * *", key="a")
        b = parse_schedule("H * * * *", key="a")
        assert isinstance(a, CronSchedule) and isinstance(b, CronSchedule)
        assert a.spec.minutes == b.spec.minutes
        assert a.to_dict()["key"] == "a"

    def test_lowercase_h(self) -> None:
        assert values("h * * * *", "x") == values("H * * * *", "x")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("60 * * * *", "minute 60 out of range 0-59"),
        ("* 24 * * *", "hour 24 out of range 0-23"),
        ("* * 32 * *", "day-of-month 32 out of range 1-31"),
        ("* * 0 * *", "day-of-month 0 out of range 1-31"),
        ("* * * 13 *", "month 13 out of range 1-12"),
        ("* * * 0 *", "month 0 out of range 1-12"),
        ("* * * * 8", "day-of-week 8 out of range 0-7"),
        ("60 * * * * *", "second 60 out of range 0-59"),
        ("99999999999999 * * * *", "minute 99999999999999 out of range 0-59"),
        ("* * * FOO *", "unknown month name 'FOO'"),
        ("* * * * funday", "unknown day-of-week name 'funday'"),
        ("a * * * *", "invalid minute value 'a'"),
        ("5- * * * *", "invalid minute value ''"),
        ("-5 * * * *", "invalid minute value '-5'"),
        ("*5 * * * *", "invalid minute value '*5'"),
        ("*/0 * * * *", "step 0 in minute '*/0' must be at least 1"),
        ("*/x * * * *", "step 'x' in minute '*/x' must be a positive whole number"),
        ("*/ * * * *", "step '' in minute '*/' must be a positive whole number"),
        ("10-5 * * * *", "minute range 10-5 is reversed"),
        ("* * * DEC-JAN *", "month range DEC-JAN is reversed"),
        ("1,,2 * * * *", "empty item in minute field"),
        ("* * * *", "has 4"),
        ("* * * * * * *", "has 7"),
        ("@reboot", "unknown cron macro '@reboot'"),
        ("? * * * *", "'?' is only allowed in day-of-month and day-of-week, not minute"),
        ("* * * ? *", "'?' is only allowed in day-of-month and day-of-week, not month"),
        ("* * * * L", "'L' in day-of-week needs a weekday before it"),
        ("* * * * 1#6", "the occurrence after '#' must be 1-5"),
        ("* * * * 1#0", "the occurrence after '#' must be 1-5"),
        ("* * * * 9#2", "day-of-week 9 out of range 0-7"),
        ("* * * * 8L", "day-of-week 8 out of range 0-7"),
        ("* * 32W * *", "day-of-month 32 out of range 1-31"),
        ("* * L/2 * *", "a step is not allowed with 'L' in day-of-month"),
        ("* * 5W/2 * *", "a step is not allowed with '5W' in day-of-month"),
        ("0 0 L-3 * *", "day-of-month L-3: 'L' cannot be part of a range"),
        ("0 0 2-5W * *", "day-of-month 2-5W: '5W' cannot be part of a range"),
        ("0 0 LW-1/2 * *", "day-of-month LW-1: 'LW' cannot be part of a range"),
        ("0 0 * * 5L-6", "day-of-week 5L-6: '5L' cannot be part of a range"),
        ("H(5-70) * * * *", "minute 70 out of range 0-59"),
        ("H(9-3) * * * *", "minute range 9-3 is reversed"),
        ("L * * * *", "invalid minute value 'L'"),
        ("0 0 30 2 *", "'0 0 30 2 *' never fires"),
        ("0 0 31 2,4,6,9,11 *", "never fires"),
        ("0 0 30 2 ?", "never fires"),
        ("0 0 0 31 4 *", "never fires"),
        ("0 0 * 2 */7", "invalid"),
    ],
)
def test_errors_name_the_bad_part(expr: str, message: str) -> None:
    if expr == "0 0 * 2 */7":  # '*/7' in day-of-week is 0 and 7: Sundays, fine
        assert parse_schedule(expr).kind == "cron"
        return
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expr)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 30 2 1",  # Mondays in February, or the 30th: fires on the Mondays
        "0 0 * 2 1#5",  # only in leap years whose February starts on a Monday
        "0 0 29 2 *",
        "0 0 L 2 *",
        "0 0 LW 2 *",
    ],
)
def test_rare_but_possible_expressions_are_valid(expr: str) -> None:
    s = parse_schedule(expr)
    assert s.next_after(datetime.fromisoformat("2024-03-01T00:00:00+00:00")) is not None


def test_spec_is_shared_between_equal_expressions() -> None:
    a = parse_schedule("0 2 * * *", "Europe/Paris")
    b = parse_schedule("0  2 * * *", "UTC")
    assert isinstance(a, CronSchedule) and isinstance(b, CronSchedule)
    assert a.spec is b.spec


def test_wall_clock_mode() -> None:
    def wall(expr: str) -> bool:
        return compile_cron(expr, None).wall_clock

    assert wall("30 2 * * *")
    assert wall("0 1-5 * * *")
    assert wall("0,30 */2 * * *") is False  # hour starts with '*'
    assert wall("*/5 2 * * *") is False  # minute starts with '*'
    assert wall("0 30 2 * * *") is False  # 6 fields: always real instants
    assert wall("@daily")
    assert wall("@hourly") is False
