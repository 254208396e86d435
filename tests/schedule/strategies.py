"""Hypothesis strategies shared by the differential and property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from random import Random
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

DST_ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
)
ZONES = (*DST_ZONES, "UTC", "Europe/Berlin", "Asia/Kolkata", "America/Sao_Paulo")

_SEEDS = st.integers(min_value=0, max_value=2**64)
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _term(r: Random, lo: int, hi: int, names: list[str] | None) -> str:
    """One list item of a field: a value, range, or stepped range/star/value."""

    def value(v: int) -> str:
        if names is not None and v - lo < len(names) and r.random() < 0.5:
            name = names[v - lo]
            return r.choice([name, name.lower(), name.title()])
        return str(v)

    kind = r.choice(["value", "value", "range", "step_star", "step_range", "step_value"])
    a = r.randint(lo, hi)
    if kind == "value":
        return value(a)
    b = r.randint(a, hi)
    step = r.randint(1, hi - lo + 1) if r.random() < 0.3 else r.randint(1, 12)
    if kind == "range":
        return f"{value(a)}-{value(b)}"
    if kind == "step_star":
        return f"*/{step}"
    if kind == "step_range":
        return f"{a}-{b}/{step}"
    return f"{a}/{step}"


def _field(r: Random, lo: int, hi: int, names: list[str] | None = None, star: float = 0.3) -> str:
    """A whole field: '*' or a comma list of terms."""
    if r.random() < star:
        return "*"
    return ",".join(_term(r, lo, hi, names) for _ in range(r.choice([1, 1, 2, 3])))


def random_cron(r: Random, *, frequent: bool = False) -> str:
    """A random cron expression in the subset cronsim understands (no '?', 'W', 'H').
    ``frequent``: days and months are '*' or simple, so a brute-force search finds the
    next fire within a few days."""
    minute = _field(r, 0, 59)
    hour = _field(r, 0, 4, star=0) if r.random() < 0.5 else _field(r, 0, 23)  # DST hours
    if frequent:
        dom = r.choice(["*", "*", "*/2", "*/3"])
        month = "*"
        dow = r.choice(["*", "*", "1-5", "0,6", "*/2"])
    else:
        c = r.random()
        if c < 0.5:
            dom = "*"
        elif c < 0.8:
            dom = _field(r, 1, 31, star=0)
        else:
            dom = r.choice(["L", "LW", "1,L", "15,LW", "L,LW"])
        month = "*" if r.random() < 0.6 else _field(r, 1, 12, MONTHS, star=0)
        c = r.random()
        if c < 0.5:
            dow = "*"
        elif c < 0.8:
            dow = _field(r, 0, 7, DAYS, star=0)
        elif c < 0.9:
            dow = f"{r.randint(0, 7)}L"
        else:
            dow = f"{r.randint(0, 7)}#{r.randint(1, 5)}"
    parts = [minute, hour, dom, month, dow]
    if r.random() < 0.4:
        parts.insert(0, _field(r, 0, 59))
    return " ".join(parts)


def cron_expressions(*, frequent: bool = False) -> st.SearchStrategy[str]:
    # Plain ``random`` seeded by hypothesis: far cheaper than composing strategies.
    return _SEEDS.map(lambda seed: random_cron(Random(seed), frequent=frequent))


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants where ``zone`` changes offset, 2023-2026, found by probing zoneinfo
    hourly and bisecting to the second (independent of tickwork's own probing)."""
    tz = ZoneInfo(zone)
    found = []
    t = datetime(2023, 1, 1, tzinfo=UTC)
    prev = t.astimezone(tz).utcoffset()
    while t.year < 2027:
        nxt = t + timedelta(hours=1)
        off = nxt.astimezone(tz).utcoffset()
        if off != prev:
            lo, hi = t, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) // 2
                if mid.astimezone(tz).utcoffset() == prev:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
            prev = off
        t = nxt
    return tuple(found)


def random_instant(r: Random, zone: str) -> datetime:
    """An aware instant in ``zone``, mostly within hours of a DST transition, with a
    random second and sometimes a microsecond part."""
    near = transitions(zone)
    if near and r.random() < 0.9:
        t = r.choice(near) + timedelta(seconds=r.randint(-8 * 3600, 8 * 3600))
    else:
        t = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=r.randint(0, 4 * 365 * 86400))
    t = t.replace(microsecond=r.choice([0, 0, 0, 1, 500_000, 999_999]))
    return t.astimezone(ZoneInfo(zone))


def instants_near_transitions(zone: str) -> st.SearchStrategy[datetime]:
    return _SEEDS.map(lambda seed: random_instant(Random(seed), zone))
