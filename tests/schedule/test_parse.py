"""parse_schedule: recognising the kind, arguments, serialisation, and no exception
but ScheduleError for any string."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwork.schedule import (
    CronSchedule,
    IntervalSchedule,
    ManualSchedule,
    OnceSchedule,
    ParsedSchedule,
    ScheduleError,
    parse_schedule,
    validate_timezone,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "kind", "cls"),
    [
        ("*/5 * * * *", "cron", CronSchedule),
        ("0 0 * * * *", "cron", CronSchedule),
        ("@daily", "cron", CronSchedule),
        ("5 h * * *", "cron", CronSchedule),  # minute 5, hashed hour: not an interval
        ("30s", "interval", IntervalSchedule),
        ("1h30m", "interval", IntervalSchedule),
        ("every 2 hours", "interval", IntervalSchedule),
        ("1 hour and 30 minutes", "interval", IntervalSchedule),  # 5 words, still an interval
        ("PT15M", "interval", IntervalSchedule),
        ("2026-12-25T09:00:00", "once", OnceSchedule),
        ("2026-12-25 09:00", "once", OnceSchedule),
        ("2026-12-25", "once", OnceSchedule),
        ("now", "once", OnceSchedule),
        ("in 10m", "once", OnceSchedule),
        ("manual", "manual", ManualSchedule),
        ("  MANUAL ", "manual", ManualSchedule),
    ],
)
def test_kind_is_recognised(expr: str, kind: str, cls: type[ParsedSchedule]) -> None:
    s = parse_schedule(expr, now=NOW)
    assert s.kind == kind
    assert isinstance(s, cls)
    assert s.expression == expr
    assert s.describe()


def test_kind_can_be_forced() -> None:
    assert parse_schedule("in 5m", now=NOW, kind="once").kind == "once"
    with pytest.raises(ScheduleError, match="'manual'"):
        parse_schedule("5m", kind="manual")
    with pytest.raises(ScheduleError, match="unknown schedule kind 'weekly'"):
        parse_schedule("5m", kind="weekly")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "the schedule expression is empty"),
        ("   ", "the schedule expression is empty"),
        ("foo", "cannot read schedule 'foo'"),
        ("10", "cannot read schedule '10'"),
        ("x" * 2000, "too long"),
    ],
)
def test_unreadable(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expr)


@pytest.mark.parametrize("value", [None, 5, 1.5, b"* * * * *", ["* * * * *"], object()])
def test_non_string_expression(value: Any) -> None:
    with pytest.raises(ScheduleError, match="must be a string"):
        parse_schedule(value)


class TestTimezone:
    def test_valid(self) -> None:
        assert validate_timezone("Europe/Paris").key == "Europe/Paris"
        assert parse_schedule("0 9 * * *", "Asia/Kolkata").tz.key == "Asia/Kolkata"

    @pytest.mark.parametrize(
        "name", ["Mars/Base", "Europe", "../etc/passwd", "/etc/localtime", "Europe/Paris\x00"]
    )
    def test_unknown(self, name: str) -> None:
        with pytest.raises(ScheduleError, match=r"unknown time zone"):
            validate_timezone(name)
        with pytest.raises(ScheduleError, match=r"unknown time zone"):
            parse_schedule("* * * * *", name)

    def test_message(self) -> None:
        with pytest.raises(ScheduleError) as info:
            validate_timezone("Mars/Base")
        assert str(info.value) == "unknown time zone 'Mars/Base'"

    @pytest.mark.parametrize("name", ["", " ", None, 3])
    def test_empty_or_not_a_string(self, name: Any) -> None:
        with pytest.raises(ScheduleError, match="time zone") as info:
            parse_schedule("* * * * *", name)
        assert info.value.field == "timezone"

    def test_the_error_names_the_timezone_field_and_an_expression_the_schedule(self) -> None:
        with pytest.raises(ScheduleError) as info:
            parse_schedule("* * * * *", "Mars/Base")
        assert info.value.field == "timezone"
        with pytest.raises(ScheduleError) as info:
            parse_schedule("* * 32 * *", "UTC")
        assert info.value.field == "schedule"

    @pytest.mark.parametrize(
        ("expr", "name"),
        [("9999-12-31T23:59:59Z", "Pacific/Kiritimati"), ("0001-01-01T00:00Z", "Etc/GMT+5")],
    )
    def test_a_one_time_instant_without_a_local_time_in_the_zone(
        self, expr: str, name: str
    ) -> None:
        with pytest.raises(ScheduleError, match=re.escape(f"out of range in time zone {name}")):
            parse_schedule(expr, name)


class TestStartAt:
    def test_forms(self) -> None:
        for value in (
            "2024-06-01T09:00:00+02:00",
            "2024-06-01T07:00:00Z",
            datetime(2024, 6, 1, 7, tzinfo=UTC),
            datetime(2024, 6, 1, 3, tzinfo=timezone(timedelta(hours=-4))),
        ):
            s = parse_schedule("* * * * *", start_at=value)
            assert s.start_at == datetime(2024, 6, 1, 7, tzinfo=UTC)
            assert s.start_at is not None and s.start_at.tzinfo is UTC

    def test_naive_is_in_the_schedule_zone(self) -> None:
        s = parse_schedule("* * * * *", "Europe/Paris", start_at="2024-06-01 09:00")
        assert s.start_at == datetime(2024, 6, 1, 7, tzinfo=UTC)
        s = parse_schedule("* * * * *", "Europe/Paris", start_at=datetime(2024, 6, 1, 9))
        assert s.start_at == datetime(2024, 6, 1, 7, tzinfo=UTC)

    def test_naive_in_a_gap_moves_after_it(self) -> None:
        s = parse_schedule("* * * * *", "America/New_York", start_at="2024-03-10T02:30:00")
        assert s.start_at == datetime(2024, 3, 10, 7, tzinfo=UTC)  # 03:00 EDT

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("tomorrow", "start_at 'tomorrow' is not an ISO-8601 date-time"),
            ("2024-02-30T00:00", "start_at '2024-02-30T00:00' is not a valid ISO-8601"),
            (12, "start_at must be a datetime or an ISO-8601 string, not int"),
        ],
    )
    def test_invalid(self, value: Any, message: str) -> None:
        with pytest.raises(ScheduleError, match=message):
            parse_schedule("* * * * *", start_at=value)

    def test_empty_string_is_none(self) -> None:
        assert parse_schedule("* * * * *", start_at="").start_at is None


def test_naive_dt_for_next_after_is_an_error() -> None:
    for expr in ("* * * * *", "5m", "2030-01-01T00:00:00Z", "manual"):
        s = parse_schedule(expr, now=NOW)
        with pytest.raises(ScheduleError, match="aware"):
            s.next_after(datetime(2024, 1, 1))
        with pytest.raises(ValueError, match="aware"):
            s.next_after("2024-01-01")  # type: ignore[arg-type]


def test_now_must_be_aware() -> None:
    with pytest.raises(ScheduleError, match="now must be an aware datetime"):
        parse_schedule("5m", now=datetime(2024, 1, 1))


def test_key_must_be_a_string() -> None:
    with pytest.raises(ScheduleError, match="key must be a string"):
        parse_schedule("H * * * *", key=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expr",
    ["*/5 * * * *", "H H * * *", "5m", "1mo", "2026-12-25T09:00", "in 10m", "now", "manual"],
)
def test_to_dict_round_trip(expr: str) -> None:
    s = parse_schedule(expr, "Europe/Paris", key="job-1", now=NOW)
    d = s.to_dict()
    assert set(d) == {"kind", "expression", "timezone", "start_at", "key"}
    assert d["expression"] == expr and d["timezone"] == "Europe/Paris" and d["key"] == "job-1"
    import json

    again = ParsedSchedule.from_dict(json.loads(json.dumps(d)))
    assert again == s
    assert hash(again) == hash(s)
    assert type(again) is type(s)
    after = datetime(2024, 5, 1, tzinfo=UTC)
    assert again.next_after(after) == s.next_after(after)
    assert type(s).from_dict(d) == s


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(ScheduleError):
        ParsedSchedule.from_dict({"kind": "cron"})
    with pytest.raises(ScheduleError):
        ParsedSchedule.from_dict("* * * * *")  # type: ignore[arg-type]
    d = parse_schedule("5m", now=NOW).to_dict()
    with pytest.raises(ScheduleError, match="interval"):
        CronSchedule.from_dict(d)


def test_repr() -> None:
    s = parse_schedule("0 2 * * *", "Europe/Paris", key="x")
    assert repr(s) == "CronSchedule('0 2 * * *', timezone='Europe/Paris', key='x')"


def test_fire_times() -> None:
    s = parse_schedule("0 * * * *")
    after = datetime(2024, 1, 1, tzinfo=UTC)
    times = list(s.fire_times(after, limit=3))
    assert [t.hour for t in times] == [1, 2, 3]
    until = datetime(2024, 1, 1, 5, tzinfo=UTC)
    assert [t.hour for t in s.fire_times(after, until)] == [1, 2, 3, 4, 5]  # until inclusive
    assert list(parse_schedule("manual").fire_times(after, limit=3)) == []
    with pytest.raises(ScheduleError):
        list(s.fire_times(datetime(2024, 1, 1), limit=1))


@settings(max_examples=1500, deadline=None)
@given(st.text())
def test_any_text_raises_only_schedule_error(text: str) -> None:
    try:
        s = parse_schedule(text, now=NOW)
    except ScheduleError:
        return
    s.describe()
    s.next_after(NOW)


_CRONISH = st.text(alphabet="0123456789*/,-?LWH#()JANFEBMONSUNTHUaz ", min_size=1, max_size=8)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_CRONISH, min_size=4, max_size=7).map(" ".join))
def test_cronish_text_raises_only_schedule_error(text: str) -> None:
    try:
        s = parse_schedule(text, key="k")
    except ScheduleError:
        return
    s.describe()
    t = s.next_after(NOW)
    assert t is None or t > NOW


_INTERVALISH = st.lists(
    st.one_of(
        st.integers(min_value=-2, max_value=10**13).map(str),
        st.sampled_from(["s", "m", "h", "d", "w", "mo", "y", "minutes", "and", ",", "every", "in"]),
        st.sampled_from(["P", "T", "Y", "M", "W", "D", "H", "S", "."]),
    ),
    min_size=1,
    max_size=6,
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(_INTERVALISH, st.sampled_from(["", " "]))
def test_intervalish_text_raises_only_schedule_error(text: str, sep: str) -> None:
    try:
        s = parse_schedule(text, "America/New_York", now=NOW)
    except ScheduleError:
        return
    s.describe()
    s.next_after(NOW)
    s.next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(st.text(), st.one_of(st.none(), st.text(max_size=30)))
def test_any_zone_and_start_text_raise_only_schedule_error(tz: str, start: str | None) -> None:
    with contextlib.suppress(ScheduleError):
        parse_schedule("* * * * *", tz, start_at=start)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["* * * * *", "0 0 29 2 *", "5m", "1mo", "2030-01-01T00:00Z", "manual"]),
    st.datetimes(
        min_value=datetime(1, 1, 3),
        max_value=datetime(9999, 12, 29),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=14))]),
    ),
)
def test_extreme_instants_do_not_crash(expr: str, dt: datetime) -> None:
    s = parse_schedule(expr, "Pacific/Kiritimati", now=NOW)
    t = s.next_after(dt)
    assert t is None or t > dt
