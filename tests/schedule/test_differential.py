"""Differential tests: tickwork against cronsim, which implements the same Debian day
rule and the same DST rule (wall clock for 5-field expressions with fixed minute and
hour, real instants otherwise).

They agree on almost everything. Where they disagree, the brute-force reference
(``reference.py``) decides, and the disagreement must fall in one of the cronsim
limitations below, each shown on its own by a test:

1. Its wall-clock mode forgets the fold: started in the second pass of an overlap it
   returns a time *before* the start (``test_cronsim_goes_back_in_an_overlap``).
2. A day that starts in a gap (Santiago, midnight) makes it work from a midnight that
   does not exist: it returns that wall time (``test_cronsim_returns_a_nonexistent_midnight``)
   or steps hours from it and skips the first real hour of the day
   (``test_cronsim_skips_the_first_hour_after_a_midnight_gap``).
3. It steps hours by 3600 s from a minute-0 start, so after a 30-minute shift (Lord
   Howe) or in a zone whose transitions are not on the hour (Chatham) it misses matches
   (``test_cronsim_misses_matches_after_a_30_minute_shift``).

These describe cronsim ``CRONSIM_VERSION``, the version ``constraints.txt`` pins: a test
of a third-party tool's behaviour holds for one version, so it checks it runs against
that one (``test_cronsim_is_the_version_described_here``). Moving the pin means reading
these tests again. (Before 2.9, cronsim read a one-value stepped range ``a-a/n`` as
``a/n``; 2.9 reads it as ``a``, as Vixie cron and tickwork do, and
``test_cronsim_reads_a_dash_a_step_as_a_step`` now shows the agreement.)
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from importlib.metadata import version
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.schedule.reference import brute_next, exists
from tests.schedule.strategies import ZONES, cron_expressions, instants_near_transitions
from tickwork.schedule import CronSchedule, ScheduleError, parse_schedule

SUB_HOUR_ZONES = {"Australia/Lord_Howe", "Pacific/Chatham"}
CRONSIM_VERSION = "2.9"


def cronsim_next(expr: str, after: datetime) -> datetime | None:
    try:
        return next(CronSim(expr, after))
    except StopIteration:  # cronsim gives up after 50 years
        return None


def is_imaginary(dt: datetime) -> bool:
    return not exists(dt.replace(tzinfo=None), dt.tzinfo)  # type: ignore[arg-type]


def explain(
    s: CronSchedule, tz: ZoneInfo, after: datetime, ours: datetime, theirs: datetime
) -> str | None:
    """Which known cronsim limitation explains a disagreement, or None. (Compared in
    UTC: Python compares datetimes of one zone by wall time, ignoring the fold.)"""
    if theirs.astimezone(UTC) <= after.astimezone(UTC):
        return "cronsim went back in time (overlap second pass)"
    if is_imaginary(theirs):
        return "cronsim returned a wall time that does not exist"
    ours_utc, theirs_utc = ours.astimezone(UTC), theirs.astimezone(UTC)
    midnight = datetime.combine(ours.date(), time())
    if not exists(midnight, tz) and ours_utc < theirs_utc:
        return "cronsim stepped hours from a midnight that does not exist"
    if str(tz) in SUB_HOUR_ZONES and ours.astimezone(UTC) < theirs.astimezone(UTC):
        return "cronsim skipped a match after a sub-hour DST shift"
    return None


@settings(
    max_examples=4000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.data())
def test_agrees_with_cronsim(data: st.DataObject) -> None:
    expr = data.draw(cron_expressions(), label="expr")
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    after = data.draw(instants_near_transitions(zone), label="after")
    tz = ZoneInfo(zone)
    try:
        s = parse_schedule(expr, zone)
    except ScheduleError as exc:
        # Ours refuses only what can never fire. (Asking cronsim to confirm is not
        # practical: it walks minute by minute for 50 years before giving up.)
        assert "never fires" in str(exc)
        return
    assert isinstance(s, CronSchedule)
    ours = s.next_after(after)
    try:
        theirs = cronsim_next(expr, after)
    except CronSimError as exc:  # pragma: no cover - the generator stays in its subset
        pytest.fail(f"cronsim rejects {expr!r}: {exc}")
    assume(theirs is not None and theirs.year < 2100)
    assert ours is not None
    assert theirs is not None
    if ours.astimezone(UTC) == theirs.astimezone(UTC):
        return
    reason = explain(s, tz, after, ours, theirs)
    assert reason is not None, f"{expr!r} in {zone} after {after}: {ours} vs cronsim {theirs}"
    # Whatever the reason, ours must be the brute-force answer.
    horizon = max(ours, theirs).astimezone(UTC) - after.astimezone(UTC) + timedelta(hours=1)
    if horizon <= timedelta(days=2 if not s.spec.six else 0.2):
        expected = brute_next(s.spec, tz, after, horizon)
        assert expected is not None and expected.astimezone(UTC) == ours.astimezone(UTC)


def test_cronsim_goes_back_in_an_overlap() -> None:
    # Sydney overlap 2024-04-06T16:00Z: 03:00 AEDT (+11) -> 02:00 AEST (+10).
    # Started at 02:28 AEST (the second pass), 02:56 AEDT has already happened.
    after = datetime.fromisoformat("2024-04-07T02:28:00+10:00").astimezone(
        ZoneInfo("Australia/Sydney")
    )
    assert after.fold == 1
    expr = "56 2,4 * * *"
    theirs = cronsim_next(expr, after)
    assert theirs is not None and theirs.isoformat() == "2024-04-07T02:56:00+11:00"
    assert theirs.astimezone(UTC) < after.astimezone(UTC)  # before the start
    ours = parse_schedule(expr, "Australia/Sydney").next_after(after)
    assert ours is not None and ours.isoformat() == "2024-04-07T04:56:00+10:00"


def test_cronsim_returns_a_nonexistent_midnight() -> None:
    # Santiago gap 2024-09-08T04:00Z: 00:00 (-04) -> 01:00 (-03); midnight never happens.
    tz = ZoneInfo("America/Santiago")
    after = datetime(2024, 9, 7, 21, 51, 30, tzinfo=tz)
    expr = "* */7 * * 0,4"  # minute starts with '*': real instants; hours 0, 7, 14, 21
    theirs = cronsim_next(expr, after)
    assert theirs is not None and theirs.isoformat() == "2024-09-08T00:00:00-04:00"
    assert is_imaginary(theirs)
    ours = parse_schedule(expr, "America/Santiago").next_after(after)
    # Sunday the 8th has no hour 0; its first matching instant is 07:00.
    assert ours is not None and ours.isoformat() == "2024-09-08T07:00:00-03:00"


def test_cronsim_skips_the_first_hour_after_a_midnight_gap() -> None:
    # Santiago gap 2023-09-03T04:00Z: 00:00 (-04) -> 01:00 (-03) on Sunday the 3rd.
    tz = ZoneInfo("America/Santiago")
    after = datetime(2023, 9, 2, 20, 38, 36, tzinfo=tz)
    expr = "16 * 1-23 * * 0"
    theirs = cronsim_next(expr, after)
    assert theirs is not None and theirs.isoformat() == "2023-09-03T02:00:16-03:00"
    ours = parse_schedule(expr, "America/Santiago").next_after(after)
    assert ours is not None and ours.isoformat() == "2023-09-03T01:00:16-03:00"


def test_cronsim_misses_matches_after_a_30_minute_shift() -> None:
    # Lord Howe overlap 2024-04-06T15:00Z: 02:00 (+11) -> 01:30 (+10:30).
    tz = ZoneInfo("Australia/Lord_Howe")
    after = datetime.fromisoformat("2024-04-06T22:50:30+11:00").astimezone(tz)
    expr = "*/20 3 * * *"  # minute starts with '*': real instants
    theirs = cronsim_next(expr, after)
    assert theirs is not None and theirs.isoformat() == "2024-04-07T03:40:00+10:30"
    ours = parse_schedule(expr, "Australia/Lord_Howe").next_after(after)
    assert ours is not None and ours.isoformat() == "2024-04-07T03:00:00+10:30"
    assert brute_next(parse_schedule(expr).spec, tz, after, timedelta(days=1)) == ours  # type: ignore[attr-defined]


def test_cronsim_is_the_version_described_here() -> None:
    assert version("cronsim") == CRONSIM_VERSION, (
        f"these tests describe cronsim {CRONSIM_VERSION} (pinned in constraints.txt), "
        f"not {version('cronsim')}: install with -c constraints.txt"
    )


def test_cronsim_reads_a_dash_a_step_as_a_step() -> None:
    # cronsim 2.9 (earlier versions read 5-5/10 as 5/10 and answered 12:15).
    after = datetime(2024, 5, 1, 12, 6, tzinfo=UTC)
    theirs = cronsim_next("5-5/10 * * * *", after)
    assert theirs is not None and theirs.isoformat() == "2024-05-01T13:05:00+00:00"
    ours = parse_schedule("5-5/10 * * * *").next_after(after)
    assert ours is not None and ours.isoformat() == "2024-05-01T13:05:00+00:00"


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_successive_fires_agree_with_cronsim_in_plain_zones(data: st.DataObject) -> None:
    """Whole sequences (not just the first fire) where cronsim has no known issue."""
    expr = data.draw(cron_expressions(frequent=True), label="expr")
    zone = data.draw(st.sampled_from(["UTC", "America/New_York", "Europe/Berlin"]))
    start = data.draw(instants_near_transitions(zone)).replace(microsecond=0)
    s = parse_schedule(expr, zone)
    theirs = CronSim(expr, start)
    t: datetime | None = start
    for _ in range(10):
        assert t is not None
        ours = s.next_after(t)
        their = next(theirs)
        went_back = their.astimezone(UTC) <= t.astimezone(UTC)
        if went_back or is_imaginary(their):
            return  # limitation 1 or 2 above: stop comparing this sequence
        assert ours is not None and ours.astimezone(UTC) == their.astimezone(UTC), (expr, t)
        t = ours
