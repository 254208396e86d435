"""A big installation on SQLite: how long the reading commands take.

    python benchmarks/big.py                          # 100,000 schedules, 1,000,000 runs
    python benchmarks/big.py --schedules 10000 --runs 100000   # smaller
    python benchmarks/big.py --db /tmp/big.db --keep  # build once, time again later

Builds the installation: one schedule and its run are made through tickwork (so every
column is as tickwork writes it, the migrations' triggers included), then copied in SQL
with new ids (schedules spread over the next day, every 1 min; runs over the last 30
days, most succeeded, some failed, a few running). Then each command runs as a user
runs it, in a fresh process, and its wall time and peak memory are printed as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tickwork import Scheduler, TaskRegistry, task

registry = TaskRegistry()


@task("big:noop", registry=registry)
async def noop(region: str = "") -> None:
    return None


async def _seed(url: str) -> None:
    async with Scheduler(url, registry=registry, engine=False) as s:
        await s.add_schedule("big:noop", "every 1m", id="seed", data={"region": "eu"})
        await s.run_now("seed")


def build(db: Path, schedules: int, runs: int) -> None:
    url = f"sqlite:///{db}"
    asyncio.run(_seed(url))
    conn = sqlite3.connect(db, isolation_level=None)
    now = int(datetime.now(UTC).timestamp() * 1e6)
    day = 86_400 * 10**6
    conn.execute("BEGIN")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(schedules)")]
    chosen = ", ".join(
        {
            "id": "printf('s%07d', n)",
            "name": "printf('schedule %d', n)",
            "next_fire_at": f"{now} + (n * 7919 % {day})",
            "revision": "n",
        }.get(c, c)
        for c in cols
    )
    conn.execute(
        f"WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)"
        f" INSERT INTO schedules ({', '.join(cols)}) SELECT {chosen}"
        " FROM k, (SELECT * FROM schedules WHERE id = 'seed')",
        (schedules - 1,),
    )
    rcols = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
    month = 30 * day
    status = (
        "CASE WHEN n % 1000 = 0 THEN 'running' WHEN n % 20 = 0 THEN 'failed' ELSE 'succeeded' END"
    )
    rchosen = ", ".join(
        {
            "id": "printf('r%08d', n)",
            "schedule_id": f"printf('s%07d', n % {schedules})",
            "scheduled_for": f"{now} - (n * 104729 % {month})",
            "due_at": f"{now} - (n * 104729 % {month})",
            "started_at": f"{now} - (n * 104729 % {month}) + 1000",
            "finished_at": f"CASE WHEN n % 1000 = 0 THEN NULL ELSE {now} - (n * 104729 % "
            f"{month}) + 1000 + n % 5000000 END",
            "status": status,
            "trigger": "'manual'",
            "attempt": "1",
            "error": "CASE WHEN n % 20 = 0 AND n % 1000 <> 0 THEN 'ValueError: boom' END",
        }.get(c, c)
        for c in rcols
    )
    conn.execute(
        f"WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)"
        f" INSERT INTO runs ({', '.join(rcols)}) SELECT {rchosen}"
        " FROM k, (SELECT * FROM runs LIMIT 1)",
        (runs - 1,),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def timed(db: Path, *args: str) -> tuple[float, float, int]:
    """Seconds, peak MB and exit code of one CLI command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        print(f"<!-- {' '.join(args)} failed: {proc.stderr.strip()[:300]} -->")
    return took, max(peak, before) / 1024, proc.returncode


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="reuse --db if it exists")
    args = parser.parse_args(argv)
    db = args.db or Path(tempfile.mkdtemp(prefix="tickwork-big-")) / "big.db"
    if not (args.keep and db.exists()):
        db.unlink(missing_ok=True)
        started = time.perf_counter()
        build(db, args.schedules, args.runs)
        print(
            f"built {args.schedules:,} schedules and {args.runs:,} runs in "
            f"{time.perf_counter() - started:.1f} s ({db.stat().st_size / 2**20:,.0f} MB)\n"
        )
    baseline = timed(db, "--version")[0]
    print(f"| command | wall time | less start-up ({baseline:.2f} s) |")
    print("|---|---:|---:|")
    for command in (
        ["list"],
        ["list", "--limit", "50", "--after", "s0050000"],
        ["next", "--count", "5"],
        ["status"],
        ["stats"],
        ["history", "--limit", "20"],
    ):
        took, _peak, code = timed(db, *command)
        mark = "" if code == 0 else " (failed)"
        print(
            f"| `tickwork {' '.join(command)}` | {took:.2f} s{mark} | {took - baseline:.2f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
