"""How the dashboard names DST changes in a list of fire times, and writes instants."""

from __future__ import annotations

from datetime import UTC, datetime

from tickwork import parse_schedule
from tickwork.web.session import Preferences
from tickwork.web.timefmt import dst_notes, relative_text, time_tag


def fires(expr: str, zone: str, after: datetime, count: int) -> list[datetime]:
    s = parse_schedule(expr, timezone=zone)
    out: list[datetime] = []
    t = after
    for _ in range(count):
        nxt = s.next_after(t)
        assert nxt is not None
        out.append(nxt)
        t = nxt
    return out


def test_a_fire_moved_by_the_spring_forward_gap_is_named() -> None:
    # Europe/Paris, 2027-03-28: clocks go from 02:00 CET to 03:00 CEST (01:00 UTC);
    # 02:30 does not exist that day and the fire moves to 03:00.
    times = fires("30 2 * * *", "Europe/Paris", datetime(2027, 3, 25, tzinfo=UTC), 6)
    notes = dst_notes(times, "Europe/Paris")
    by_day = {f.at.astimezone(UTC).date().isoformat(): f.note for f in notes}
    note = by_day["2027-03-28"]
    assert note is not None
    assert "clocks go forward at 2027-03-28 01:00 UTC (UTC+01:00 → UTC+02:00)" in note
    assert "moved from 02:30:00 by the spring-forward gap" in note
    assert by_day["2027-03-27"] is None and by_day["2027-03-29"] is None


def test_the_repeated_hour_of_a_fall_back_is_named() -> None:
    # Europe/Paris, 2027-10-31: 03:00 CEST becomes 02:00 CET (01:00 UTC); an every-30-min
    # expression fires at each real instant, so 02:00 and 02:30 happen twice.
    times = fires("*/30 * * * *", "Europe/Paris", datetime(2027, 10, 30, 23, 40, tzinfo=UTC), 6)
    notes = [f.note for f in dst_notes(times, "Europe/Paris")]
    assert any(n and "clocks go back" in n for n in notes)
    assert any(n and "the same wall time again" in n for n in notes)


def test_no_note_without_a_change() -> None:
    times = fires("0 9 * * 1-5", "Europe/Paris", datetime(2027, 6, 1, tzinfo=UTC), 10)
    assert all(f.note is None for f in dst_notes(times, "Europe/Paris"))


def test_time_tag_writes_the_chosen_zone_and_keeps_the_instant() -> None:
    at = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    in_zone = time_tag(at, Preferences(time_mode="schedule"), "America/New_York")
    assert 'datetime="2027-01-15T08:00:00+00:00"' in in_zone
    assert "2027-01-15 03:00:00 EST" in in_zone
    assert "2027-01-15 08:00:00 UTC" in time_tag(at, Preferences(time_mode="utc"), "Asia/Tokyo")
    browser = time_tag(at, Preferences(time_mode="browser", browser_zone="Asia/Tokyo"), "UTC")
    assert "2027-01-15 17:00:00 JST" in browser


def test_relative_text() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert relative_text(datetime(2027, 1, 1, 0, 5, tzinfo=UTC), now) == "in 5 min"
    assert relative_text(datetime(2026, 12, 31, 22, 0, tzinfo=UTC), now) == "2 h 0 min ago"
