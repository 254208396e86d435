"""A big installation on SQLite: how long the reading commands take.

    python benchmarks/big.py                          # 100,000 schedules, 1,000,000 runs
    python benchmarks/big.py --schedules 10000 --runs 100000   # smaller
    python benchmarks/big.py --db /tmp/big.db --keep  # build once, time again later
    python benchmarks/big.py --db /tmp/big.db --keep --only stats --only status \
        --rounds 7 --before /tmp/before               # A/B against another checkout
        [--before-db /tmp/big-a.db]                   # A on a copy (older migrations)

Builds the installation: one schedule and its run are made through tickwork (so every
column is as tickwork writes it, the migrations' triggers included), then copied in SQL
with new ids (schedules spread over the next day, every 1 min; runs over the last 30
days, most succeeded, some failed, a few running). Then each command runs as a user
runs it, in a fresh process, and its wall time and peak memory are printed as Markdown.
Each command runs once unmeasured first, so that its modules load from their bytecode
as in an installed package.

With ``--before DIR`` (a checkout of tickwork, say ``git worktree add DIR COMMIT``) each
command runs alternately from that checkout (A) and from this one (B), ``--rounds``
times each, on the same file: every figure is printed, then the medians and B / A.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import statistics
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


def timed(db: Path, *args: str, checkout: Path | None = None) -> tuple[float, float, int]:
    """Seconds, peak MB and exit code of one CLI command in a fresh process (run from
    ``checkout`` when given, else from this one)."""
    env = dict(os.environ)
    # As installed: modules load from their compiled bytecode (pip compiles it at
    # install), not compiled again at each start as under PYTHONDONTWRITEBYTECODE.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if checkout is not None:
        env["PYTHONPATH"] = f"{checkout / 'src'}{os.pathsep}{checkout}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        print(f"<!-- {' '.join(args)} failed: {proc.stderr.strip()[:300]} -->")
    return took, max(peak, before) / 1024, proc.returncode


def main(argv: list[str]) -> int:
    """Exit code 1 when a timed command failed (each failure is printed where it
    happened)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="reuse --db if it exists")
    parser.add_argument(
        "--only", action="append", metavar="COMMAND", help="time only this command (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="times each command runs")
    parser.add_argument(
        "--before", type=Path, metavar="DIR", help="alternate with the checkout in DIR (A/B)"
    )
    parser.add_argument(
        "--before-db",
        type=Path,
        metavar="PATH",
        help="the file the --before checkout reads (a copy of --db, when this checkout's "
        "migrations would change --db beyond what that checkout knows)",
    )
    args = parser.parse_args(argv)
    # Checked before the build (minutes): a wrong path would time this checkout as A.
    if args.before is not None and not (args.before / "src" / "tickwork").is_dir():
        parser.error(f"--before {args.before}: not a tickwork checkout (no src/tickwork there)")
    if args.before_db is not None and not args.before_db.is_file():
        parser.error(f"--before-db {args.before_db}: no such file")
    db = args.db or Path(tempfile.mkdtemp(prefix="tickwork-big-")) / "big.db"
    if not (args.keep and db.exists()):
        db.unlink(missing_ok=True)
        started = time.perf_counter()
        build(db, args.schedules, args.runs)
        print(
            f"built {args.schedules:,} schedules and {args.runs:,} runs in "
            f"{time.perf_counter() - started:.1f} s ({db.stat().st_size / 2**20:,.0f} MB)\n"
        )
    commands = [
        c for c in COMMANDS if not args.only or " ".join(c) in args.only or c[0] in args.only
    ]
    if args.before is not None:
        return compare(db, commands, args.rounds, args.before, args.before_db or db)
    failed = False
    for command in commands:  # writes the bytecode of every module the commands load
        timed(db, *command)
    baseline = timed(db, "--version")[0]
    print(f"| command | wall time | less start-up ({baseline:.2f} s) |")
    print("|---|---:|---:|")
    for command in commands:
        for _ in range(args.rounds):
            took, _peak, code = timed(db, *command)
            failed |= code != 0
            mark = "" if code == 0 else " (failed)"
            print(
                f"| `tickwork {' '.join(command)}` | {took:.2f} s{mark} "
                f"| {took - baseline:.2f} s |",
                flush=True,
            )
    return 1 if failed else 0


COMMANDS: list[list[str]] = [
    ["list"],
    ["list", "--limit", "50", "--after", "s0050000"],
    ["next", "--count", "5"],
    ["status"],
    ["stats"],
    ["history", "--limit", "20"],
]


def cpu_seconds() -> float:
    """User and system CPU time of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compare(db: Path, commands: list[list[str]], rounds: int, before: Path, before_db: Path) -> int:
    """Each command from ``before`` (A) and from this checkout (B), alternately: wall
    time, and CPU time (what the command itself costs, less sensitive to the machine's
    other load)."""
    failed = False
    print("| command | figure | A (before) | B (this checkout) | A median | B median | B / A |")
    print("|---|---|---|---|---:|---:|---:|")
    for checkout, file in ((before, before_db), (None, db)):  # bytecode written, migrated
        for command in commands:
            timed(file, *command, checkout=checkout)
    for command in [["--version"], *commands]:
        wall: dict[str, list[float]] = {"A": [], "B": []}
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        for _ in range(rounds):
            for name, checkout, file in (("A", before, before_db), ("B", None, db)):
                spent = cpu_seconds()
                took, _peak, code = timed(file, *command, checkout=checkout)
                if code != 0:
                    print(f"<!-- {' '.join(command)} failed -->")
                    failed = True
                wall[name].append(took)
                cpu[name].append(cpu_seconds() - spent)
        for figure, values in (("wall", wall), ("CPU", cpu)):
            ma, mb = statistics.median(values["A"]), statistics.median(values["B"])
            print(
                f"| `tickwork {' '.join(command)}` | {figure} "
                f"| {', '.join(f'{x:.2f}' for x in values['A'])} s "
                f"| {', '.join(f'{x:.2f}' for x in values['B'])} s "
                f"| {ma:.2f} s | {mb:.2f} s | {mb / ma:.2f} |",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
