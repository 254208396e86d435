"""Cron ``next_after`` speed: tickwork against croniter and cronsim, in one run.

    python benchmarks/cron_next.py            # 10 000 successive calls, median of 5
    python benchmarks/cron_next.py --quick    # 1 000 calls, median of 3
    python benchmarks/cron_next.py --update-docs   # also rewrite its section of
                                                   # docs/benchmarks.md

Each library starts at the same instant (2024-01-01 00:00 America/New_York) and is asked
for successive fire times: tickwork ``s.next_after(t)`` with ``t`` its previous answer,
croniter ``get_next(datetime)``, cronsim ``next(it)``. A run stops at N calls or when
the answers pass the year 2400 (croniter cannot go past 9999), and runs repeat from the
start until N calls are timed; making the iterators is not timed. One untimed warm-up
round first fills every library's caches (tickwork's zone tables, compiled specs). The
figure is the median over the repeats of the mean time per call.

This measures speed only; correctness against cronsim is in tests/schedule.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter
from cronsim import CronSim

from tickwork.schedule import parse_schedule

ZONE = "America/New_York"
START = datetime(2024, 1, 1, tzinfo=ZoneInfo(ZONE))
LAST_YEAR = 2400
GOAL = 10.0

EXPRESSIONS = [
    "*/5 * * * *",
    "0 2 * * *",
    "0 9 * * 1-5",
    "30 4 1,15 * 5",
    "0 0 29 2 *",
    "*/7 3-17/2 * 1,6,12 *",
    "30 */10 9-17 * * 1-5",  # 6 fields, seconds first
]
#: From one fire a minute to one every 28 to 40 years.
DISTANCE = ["* * * * *", "0 0 29 2 1", "0 0 29 2 *", "0 0 * 2 1#5"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Schedule math: cron next_after"

Stepper = Callable[[], datetime | None]


def _tickwork(expr: str, zone: str = ZONE) -> Callable[[], Stepper]:
    s = parse_schedule(expr, zone)

    def make() -> Stepper:
        t: list[datetime | None] = [START]

        def step() -> datetime | None:
            assert t[0] is not None
            t[0] = s.next_after(t[0])
            return t[0]

        return step

    return make


def _croniter(expr: str) -> Callable[[], Stepper]:
    six = len(expr.split()) == 6

    def make() -> Stepper:
        it = croniter(expr, START, second_at_beginning=six)
        return lambda: it.get_next(datetime)  # type: ignore[no-any-return]

    return make


def _cronsim(expr: str) -> Callable[[], Stepper]:
    def make() -> Stepper:
        it = CronSim(expr, START)
        return lambda: next(it)

    return make


LIBRARIES: dict[str, Callable[[str], Callable[[], Stepper]]] = {
    "tickwork": _tickwork,
    "croniter": _croniter,
    "cronsim": _cronsim,
    "tickwork-utc": lambda expr: _tickwork(expr, "UTC"),
}
MAIN = ("tickwork", "croniter", "cronsim")


def time_calls(make: Callable[[], Stepper], calls: int) -> float:
    """Mean nanoseconds per call over ``calls`` successive calls (restarting at 2400)."""
    total_ns = 0
    done = 0
    while done < calls:
        step = make()
        perf = time.perf_counter_ns
        t0 = perf()
        n = 0
        while done + n < calls:
            result = step()
            n += 1
            if result is None or result.year > LAST_YEAR:
                break
        total_ns += perf() - t0
        done += n
    return total_ns / done


def measure(expr: str, lib: str, calls: int, repeats: int) -> float:
    make = LIBRARIES[lib](expr)
    time_calls(make, min(calls, 1000))  # warm-up
    return statistics.median(time_calls(make, calls) for _ in range(repeats))


def parse_cost(expr: str, repeats: int) -> dict[str, float]:
    """Nanoseconds to parse an expression from scratch (tickwork's cache cleared)."""
    out: dict[str, float] = {}
    n = 200
    six = len(expr.split()) == 6
    for lib, fn in (
        ("tickwork", lambda: _fresh_parse(expr)),
        ("croniter", lambda: croniter(expr, START, second_at_beginning=six)),
        ("cronsim", lambda: CronSim(expr, START)),
    ):
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter_ns() - t0) / n)
        out[lib] = statistics.median(runs)
    return out


def _fresh_parse(expr: str) -> None:
    from tickwork.schedule.cron import _compile

    _compile.cache_clear()
    parse_schedule(expr, ZONE)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"model name\s*:\s*(.+)", text)
        if m:
            cpu = m.group(1).strip()
    except OSError:
        pass
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, {py}"


def us(ns: float) -> str:
    return f"{ns / 1000:.2f}"


def run(quick: bool) -> str:
    calls, repeats = (1000, 3) if quick else (10_000, 5)
    lines = [
        SECTION,
        "",
        f"Command: `python benchmarks/cron_next.py{' --quick' if quick else ''}` "
        f"({calls} successive calls, median of {repeats}; zone {ZONE}).",
        "",
        f"Machine: {machine()}.",
        "",
        "Microseconds per `next_after` call (lower is better); the ratios are how many "
        f"times faster tickwork is (goal: at least {GOAL:g}x faster than croniter).",
        "",
        "| expression | tickwork µs | croniter µs | cronsim µs | vs croniter | vs cronsim |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    missed = []
    for expr in EXPRESSIONS:
        r = {lib: measure(expr, lib, calls, repeats) for lib in MAIN}
        vs_croniter = r["croniter"] / r["tickwork"]
        vs_cronsim = r["cronsim"] / r["tickwork"]
        if vs_croniter < GOAL:
            missed.append(f"`{expr}` ({vs_croniter:.1f}x)")
        lines.append(
            f"| `{expr}` | {us(r['tickwork'])} | {us(r['croniter'])} | {us(r['cronsim'])} "
            f"| {vs_croniter:.1f}x | {vs_cronsim:.1f}x |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    lines += [
        "",
        "Goal met on every expression." if not missed else "Goal missed on: " + ", ".join(missed),
        "",
        "Distance to the next fire: time per call from a fire every minute to one every few "
        "decades (`0 0 29 2 1` is the Mondays of February or the 29th: Vixie's OR rule; "
        "`0 0 * 2 1#5` is a fifth Monday in February, every 28 to 40 years).",
        "",
        "| expression | tickwork µs | vs `* * * * *` | tickwork in UTC µs | croniter µs "
        "| cronsim µs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base = None
    for expr in DISTANCE:
        r = {lib: measure(expr, lib, calls, repeats) for lib in LIBRARIES}
        base = base or r["tickwork"]
        lines.append(
            f"| `{expr}` | {us(r['tickwork'])} | {r['tickwork'] / base:.2f}x "
            f"| {us(r['tickwork-utc'])} | {us(r['croniter'])} | {us(r['cronsim'])} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    lines += [
        "",
        "tickwork's cost does not grow with the distance itself: a search jumps field by "
        "field and skips empty months through an index of the 400-year Gregorian cycle, "
        "so a fire 4 years away costs the same as one 40 years away (`0 0 29 2 *` vs "
        "`0 0 * 2 1#5`). Two constant costs come on top of the same-day fast path: an "
        "answer in another month than the previous one runs the full calendar search "
        "(about 2 µs, see the UTC column), and one in another DST offset window than the "
        "start resolves that window (about 1.5 µs more). croniter and cronsim walk day by "
        "day, so theirs grows with the distance.",
        "",
        "The machine is shared (2 cores, other work running): single figures vary by "
        "tens of percent between runs; the ratios, measured in the same run, vary less.",
        "",
        "Parsing, microseconds per expression (tickwork's compiled-spec cache cleared each "
        "time; `parse_schedule` of an already seen expression is a cache hit).",
        "",
        "| expression | tickwork µs | croniter µs | cronsim µs |",
        "|---|---:|---:|---:|",
    ]
    for expr in ("0 9 * * 1-5", "*/7 3-17/2 * 1,6,12 *"):
        p = parse_cost(expr, repeats)
        lines.append(
            f"| `{expr}` | {us(p['tickwork'])} | {us(p['croniter'])} | {us(p['cronsim'])} |"
        )
    return "\n".join(lines) + "\n"


def update_docs(section: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md, keeping the others."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        end = len(text) if nxt < 0 else nxt + 1
        text = text[:start] + section + ("\n" if nxt >= 0 else "") + text[end:]
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 000 calls, median of 3")
    parser.add_argument(
        "--update-docs", action="store_true", help=f"rewrite the section in {DOCS.name}"
    )
    args = parser.parse_args()
    section = run(args.quick)
    print(section)
    if args.update_docs:
        update_docs(section)


if __name__ == "__main__":
    main()
