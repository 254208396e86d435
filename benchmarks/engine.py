"""tickwork's engine against APScheduler 3.11 on SQLite, in the same run.

    python benchmarks/engine.py            # everything (about 10 minutes)
    python benchmarks/engine.py --quick    # smaller sizes, for a smoke run
    python benchmarks/engine.py --sustained-seconds 5 sustained   # a shorter window
    python benchmarks/engine.py burst sustained concurrency scale   # pick scenarios
    python benchmarks/engine.py worker     # sync and async tasks in a worker process

Every tickwork run is durable: committed as ``running`` before its task starts.
SQLite runs in WAL mode with ``synchronous=NORMAL`` (the default): a committed run
survives the process being killed; an OS crash or power loss may lose the last
commits. Results are printed as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil

from benchmarks import bench_tasks
from tickwork import EngineConfig, Scheduler, parse_schedule


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms(x: float) -> str:
    return f"{x * 1000:,.0f} ms" if x == x else "n/a"


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


# -- tickwork ----------------------------------------------------------------------------


async def tw_burst(n: int, db: Path) -> dict[str, Any]:
    bench_tasks.starts.clear()
    async with Scheduler(
        f"sqlite:///{db}", registry=bench_tasks.registry, max_concurrent=max(n, 100)
    ) as s:
        due = datetime.now(UTC) + timedelta(seconds=2 + n / 800)  # all added before due
        t0 = time.perf_counter()
        for i in range(n):
            await s.add_schedule("bench:noop", due.isoformat(), id=f"b{i}")
        add_rate = n / (time.perf_counter() - t0)
        while len(bench_tasks.starts) < n and time.time() < due.timestamp() + 60:
            await asyncio.sleep(0.01)
    lags = [start - sched for sched, start in bench_tasks.starts]
    return {
        "started": len(lags),
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
        "max": max(lags) if lags else float("nan"),
        "all_started": max(lags) if len(lags) == n else float("nan"),
        "add_rate": add_rate,
    }


async def tw_sustained(schedules: int, seconds: int, db: Path) -> dict[str, Any]:
    bench_tasks.starts.clear()
    async with Scheduler(
        f"sqlite:///{db}", registry=bench_tasks.registry, max_concurrent=max(schedules, 100)
    ) as s:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        end = start + timedelta(seconds=seconds - 1)
        for i in range(schedules):
            await s.add_schedule("bench:noop", "every 1s", id=f"s{i}", start_at=start, end_at=end)
        while time.time() < end.timestamp() + 3:
            await asyncio.sleep(0.1)
    lags = [start_ - sched for sched, start_ in bench_tasks.starts]
    due = schedules * seconds
    return {"done": len(lags), "due": due, "p50": pct(lags, 50), "p99": pct(lags, 99)}


async def tw_concurrency(n: int, db: Path) -> dict[str, Any]:
    bench_tasks.starts.clear()
    bench_tasks.max_running = 0
    async with Scheduler(f"sqlite:///{db}", registry=bench_tasks.registry, max_concurrent=n) as s:
        due = datetime.now(UTC) + timedelta(seconds=2 + n / 800)  # all added before due
        for i in range(n):
            await s.add_schedule("bench:sleep1", due.isoformat(), id=f"c{i}")
        while len(bench_tasks.starts) < n and time.time() < due.timestamp() + 30:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.2)
    lags = [start - sched for sched, start in bench_tasks.starts]
    return {
        "started": len(lags),
        "max_running": bench_tasks.max_running,
        "spread": (max(lags) - min(lags)) if lags else float("nan"),
        "all_started": max(lags) if lags else float("nan"),
    }


async def tw_scale(n: int, db: Path) -> dict[str, Any]:
    """Add ``n`` schedules one call at a time (daily cron, not due), then measure a fresh
    process: start to first fire, RSS, idle CPU."""
    gc.collect()
    timed = min(n, 20_000)
    async with Scheduler(f"sqlite:///{db}", registry=bench_tasks.registry) as s:
        t0 = time.perf_counter()
        for i in range(timed):
            await s.add_schedule("bench:noop", f"{i % 60} {i % 24} * * *", id=f"k{i}")
        add_seconds = time.perf_counter() - t0
        if n > timed:
            # The rest straight into the store (same records, no per-call event-loop hop),
            # so a million-schedule database is built in a minute instead of eight.
            first = await s.get_schedule("k0")
            store = s.store

            def bulk() -> None:
                now = datetime.now(UTC)
                for i in range(timed, n):
                    expr = f"{i % 60} {i % 24} * * *"
                    nxt = parse_schedule(expr).next_after(now)
                    store.add_schedule(first.replace(id=f"k{i}", schedule=expr, next_fire_at=nxt))

            await asyncio.to_thread(bulk)
    child = subprocess.run(
        [sys.executable, str(Path(__file__)), "_scale_child", str(db)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    result = dict(kv.split("=") for kv in child.stdout.split())
    return {
        "n": n,
        "add_rate": timed / add_seconds,
        "start_to_first_fire": float(result["first_fire"]),
        "rss_mb": float(result["rss_mb"]),
        "idle_cpu": float(result["idle_cpu"]),
    }


async def _scale_child(db: Path) -> None:
    """In a fresh process: open the big database, fire one schedule due now."""
    t_start = time.time()
    async with Scheduler(f"sqlite:///{db}", registry=bench_tasks.registry) as s:
        await s.add_schedule("bench:noop", "now", id="probe", replace_existing=True)
        while not bench_tasks.starts:
            await asyncio.sleep(0.001)
        first = bench_tasks.starts[0][1] - t_start
        proc = psutil.Process()
        cpu0 = sum(proc.cpu_times()[:2])
        await asyncio.sleep(10)
        idle = (sum(proc.cpu_times()[:2]) - cpu0) / 10
        print(f"first_fire={first:.3f} rss_mb={rss_mb():.1f} idle_cpu={idle:.4f}")


# -- a worker process, schedules added by another ---------------------------------------


def _starts_file(db: Path) -> Path:
    return db.with_suffix(".starts")


def _read_lags(path: Path) -> list[float]:
    if not path.exists():
        return []
    lags = []
    for line in path.read_text().splitlines():
        scheduled, started = line.split()
        lags.append(float(started) - float(scheduled))
    return lags


async def _worker_child(kind: str, db: Path, max_concurrent: int) -> None:
    """A worker with default settings (but ``max_concurrent``) until its stdin closes;
    tasks append their start to ``$TICKWORK_BENCH_FILE``."""
    loop = asyncio.get_running_loop()
    if kind == "aps":
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        sched = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db}")},
            executors={"default": ThreadPoolExecutor()},
            job_defaults={"misfire_grace_time": None, "coalesce": False},
            timezone="UTC",
        )
        sched.start()
        print("ready", flush=True)
        cpu = sum(psutil.Process().cpu_times()[:2])
        await loop.run_in_executor(None, sys.stdin.read)
        print(f"cpu={sum(psutil.Process().cpu_times()[:2]) - cpu:.3f}", flush=True)
        sched.shutdown(wait=False)
        return
    async with Scheduler(
        f"sqlite:///{db}", registry=bench_tasks.registry, max_concurrent=max_concurrent
    ):
        print("ready", flush=True)
        cpu = sum(psutil.Process().cpu_times()[:2])
        await loop.run_in_executor(None, sys.stdin.read)
        print(f"cpu={sum(psutil.Process().cpu_times()[:2]) - cpu:.3f}", flush=True)


async def tw_worker(kind: str, n: int, db: Path) -> dict[str, Any]:
    """``n`` one-time schedules due at once, added by this process while a worker process
    (default settings: max_concurrent 100) waits; how late their tasks start there.
    ``kind``: "sync" or "async" (the task, a line appended to a file), "floor" (the
    async task on a worker whose ``max_concurrent`` is ``n``: every run is claimed by the
    fire, none waits for a slot, so no end is written before the last start; what the
    machine allows the default settings at best), or "aps" (APScheduler 3.11, its
    default thread pool executor: 10 threads; its jobs are added before the worker
    starts, as it does not see jobs another process adds)."""
    task_kind = "async" if kind == "floor" else kind
    max_concurrent = n if kind == "floor" else EngineConfig().max_concurrent
    out = _starts_file(db)
    out.unlink(missing_ok=True)
    env = {**os.environ, "TICKWORK_BENCH_FILE": str(out)}
    # APScheduler adds about 100 jobs a second: they must all be stored before the due time.
    due = datetime.now(UTC) + timedelta(seconds=3 + n / (40 if kind == "aps" else 1500))
    if kind == "aps":
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        adder = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db}")},
            job_defaults={"misfire_grace_time": None, "coalesce": False},
            timezone="UTC",
        )
        adder.start(paused=True)
        t0 = time.perf_counter()
        for i in range(n):
            adder.add_job(
                bench_tasks.aps_append, "date", run_date=due, args=[due.timestamp()], id=f"w{i}"
            )
        add_seconds = time.perf_counter() - t0
        adder.shutdown(wait=False)
    if kind != "aps":  # APScheduler's file is its own: tickwork refuses another's tables
        async with Scheduler(f"sqlite:///{db}", engine=False):
            pass  # the database exists (migrated) before the worker opens it
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__)),
        "_worker",
        kind,
        str(db),
        str(max_concurrent),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert worker.stdout is not None and worker.stdin is not None
    await worker.stdout.readline()  # ready
    if kind != "aps":
        async with Scheduler(f"sqlite:///{db}", engine=False) as client:
            t0 = time.perf_counter()
            for i in range(n):
                await client.add_schedule(f"bench:append_{task_kind}", due.isoformat(), id=f"w{i}")
            add_seconds = time.perf_counter() - t0
    added_before_due = time.time() < due.timestamp()
    deadline = due.timestamp() + 60
    while time.time() < deadline:
        await asyncio.sleep(0.2)
        if time.time() > due.timestamp() + 1 and len(_read_lags(out)) >= n:
            break
    worker.stdin.close()
    cpu = float((await worker.stdout.readline()).decode().strip().removeprefix("cpu="))
    await worker.wait()
    lags = _read_lags(out)
    return {
        "started": len(lags),
        "p50": pct(lags, 50),
        "max": max(lags) if lags else float("nan"),
        "all_started": max(lags) if len(lags) == n else float("nan"),
        "add_seconds": add_seconds,
        "added_before_due": added_before_due,
        "worker_cpu": cpu,
    }


# -- APScheduler 3.11 ----------------------------------------------------------------------


def _aps(db: Path, workers: int, grace: int | None) -> Any:
    from apscheduler.executors.asyncio import AsyncIOExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{db}")},
        executors={"default": AsyncIOExecutor()},
        job_defaults={"misfire_grace_time": grace, "coalesce": False, "max_instances": 1},
        timezone="UTC",
    )


async def aps_burst(n: int, db: Path, grace: int | None) -> dict[str, Any]:
    bench_tasks.aps_starts.clear()
    sched = _aps(db, n, grace)
    sched.start()
    due = datetime.now(UTC) + timedelta(seconds=2 + n / 500)
    t0 = time.perf_counter()
    for i in range(n):
        sched.add_job(
            bench_tasks.aps_noop, "date", run_date=due, args=[due.timestamp()], id=f"b{i}"
        )
    add_rate = n / (time.perf_counter() - t0)
    deadline = due.timestamp() + 60
    while len(bench_tasks.aps_starts) < n and time.time() < deadline:
        await asyncio.sleep(0.05)
        if time.time() > due.timestamp() + 5 and not sched.get_jobs():
            break  # every job ran or was dropped as misfired
    sched.shutdown(wait=False)
    lags = [start - s for s, start in bench_tasks.aps_starts]
    return {
        "started": len(lags),
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
        "max": max(lags) if lags else float("nan"),
        "all_started": max(lags) if len(lags) == n else float("nan"),
        "add_rate": add_rate,
    }


async def aps_sustained(schedules: int, seconds: int, db: Path) -> dict[str, Any]:
    from apscheduler.events import EVENT_JOB_SUBMITTED

    lags: list[float] = []

    def on_submit(event: Any) -> None:
        now = time.time()
        for t in event.scheduled_run_times:
            lags.append(now - t.timestamp())

    sched = _aps(db, schedules, None)
    sched.add_listener(on_submit, EVENT_JOB_SUBMITTED)
    sched.start()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3 + schedules / 500)
    end = start + timedelta(seconds=seconds - 1)
    for i in range(schedules):
        sched.add_job(
            bench_tasks.aps_tick,
            "interval",
            seconds=1,
            start_date=start,
            end_date=end,
            args=[f"s{i}"],
            id=f"s{i}",
        )
    while time.time() < end.timestamp() + 3:
        await asyncio.sleep(0.1)
    sched.shutdown(wait=False)
    return {
        "done": len(lags),
        "due": schedules * seconds,
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
    }


async def aps_add_rate(n: int, db: Path) -> float:
    sched = _aps(db, 10, None)
    sched.start(paused=True)
    t0 = time.perf_counter()
    for i in range(n):
        sched.add_job(
            bench_tasks.aps_tick, "cron", hour=i % 24, minute=i % 60, args=["x"], id=f"k{i}"
        )
    rate = n / (time.perf_counter() - t0)
    sched.shutdown(wait=False)
    return rate


# -- driver ------------------------------------------------------------------------------

#: What ``isolated`` may run in a child process.
MEASUREMENTS: dict[str, Any] = {
    "tw_burst": tw_burst,
    "tw_sustained": tw_sustained,
    "tw_concurrency": tw_concurrency,
    "tw_scale": tw_scale,
    "tw_worker": tw_worker,
    "aps_burst": aps_burst,
    "aps_sustained": aps_sustained,
    "aps_add_rate": aps_add_rate,
}


async def isolated(name: str, *args: Any) -> Any:
    """Run one measurement in a fresh process: what one measurement leaves behind (live
    objects the garbage collector then scans at every full collection, caches, pools)
    must not weigh on the next, whichever scheduler made it."""
    encoded = json.dumps([name, [str(a) if isinstance(a, Path) else a for a in args]])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__)),
        "_measure",
        encoded,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"{name}{args} failed with exit code {child.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def _measure(encoded: str) -> None:
    # APScheduler logs a warning per misfired job: thousands with its default grace.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    name, args = json.loads(encoded)
    fn = MEASUREMENTS[name]
    params = list(inspect.signature(fn).parameters.values())
    values = [
        Path(a) if p.annotation in ("Path", Path) else a for p, a in zip(params, args, strict=False)
    ]
    result = await fn(*values)
    print(json.dumps(result))


def fresh_db(tmp: Path, name: str) -> Path:
    path = tmp / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "scenarios", nargs="*", default=["burst", "sustained", "concurrency", "scale"]
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--sustained-seconds",
        type=int,
        metavar="N",
        help="how long the sustained scenario fires (default 30 s, 10 s with --quick)",
    )
    args = parser.parse_args(argv)
    if args.scenarios[:1] == ["_scale_child"]:
        await _scale_child(Path(args.scenarios[1]))
        return
    if args.scenarios[:1] == ["_worker"]:
        await _worker_child(args.scenarios[1], Path(args.scenarios[2]), int(args.scenarios[3]))
        return
    if args.scenarios[:1] == ["_measure"]:
        await _measure(args.scenarios[1])
        return
    with tempfile.TemporaryDirectory(prefix="tickwork-bench-") as tmp:
        await scenarios(args.scenarios, args.quick, Path(tmp), args.sustained_seconds)


async def scenarios(
    names: list[str], quick: bool, tmp: Path, sustained_seconds: int | None = None
) -> None:
    """The scenarios asked for, their databases in ``tmp``."""
    print(
        f"# tickwork engine benchmark ({datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, SQLite WAL synchronous=NORMAL)\n"
    )

    if "burst" in names:
        print("## Burst: one-time runs due at the same instant\n")
        print(
            "| scheduler | runs | started | lag p50 | lag p99 | lag max | all started after | adds/s |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for n in [1000] if quick else [1000, 10_000]:
            tw = await isolated("tw_burst", n, fresh_db(tmp, f"tw-burst-{n}"))
            print(
                f"| tickwork | {n:,} | {tw['started']:,} | {ms(tw['p50'])} | {ms(tw['p99'])} | "
                f"{ms(tw['max'])} | {ms(tw['all_started'])} | {tw['add_rate']:,.0f} |",
                flush=True,
            )
            for grace, label in ((None, "no misfire limit"), (1, "default 1 s grace")):
                ap = await isolated("aps_burst", n, fresh_db(tmp, f"aps-burst-{n}-{grace}"), grace)
                print(
                    f"| APScheduler 3.11 ({label}) | {n:,} | {ap['started']:,} | {ms(ap['p50'])} | "
                    f"{ms(ap['p99'])} | {ms(ap['max'])} | {ms(ap['all_started'])} | "
                    f"{ap['add_rate']:,.0f} |",
                    flush=True,
                )
                if grace is None and ap["all_started"] == ap["all_started"]:
                    print(
                        f"|  ratio (APScheduler / tickwork, all started) | | | | | | "
                        f"{ap['all_started'] / tw['all_started']:.1f}x | |",
                        flush=True,
                    )
        print()

    if "sustained" in names:
        n, secs = (100, 10) if quick else (500, 30)
        secs = sustained_seconds or secs
        print(f"## Sustained: {n} schedules every second for {secs} s\n")
        print("| scheduler | runs done / due | lag p50 | lag p99 |")
        print("|---|---:|---:|---:|")
        tw = await isolated("tw_sustained", n, secs, fresh_db(tmp, "tw-sus"))
        print(
            f"| tickwork | {tw['done']:,} / {tw['due']:,} | {ms(tw['p50'])} | {ms(tw['p99'])} |",
            flush=True,
        )
        ap = await isolated("aps_sustained", n, secs, fresh_db(tmp, "aps-sus"))
        print(
            f"| APScheduler 3.11 | {ap['done']:,} / {ap['due']:,} | {ms(ap['p50'])} | {ms(ap['p99'])} |"
        )
        print(f"| ratio (lag p99) | | | {ap['p99'] / tw['p99']:.1f}x |\n", flush=True)

    if "concurrency" in names:
        n = 500 if quick else 2000
        print(f"## Concurrency: {n} async tasks of 1 s due at once (max_concurrent={n})\n")
        tw = await isolated("tw_concurrency", n, fresh_db(tmp, "tw-conc"))
        print("| scheduler | started | max running at once | start spread | all started after |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| tickwork | {tw['started']:,} | {tw['max_running']:,} | {ms(tw['spread'])} | "
            f"{ms(tw['all_started'])} |\n",
            flush=True,
        )

    if "worker" in names:
        print(
            "## Worker: one-time schedules due at once, added by another process "
            "(default settings: max_concurrent 100, 32 threads)\n"
        )
        print(
            "| scheduler | task | runs | started | lag p50 | all started after | "
            "against APScheduler | worker CPU |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        aps_all: float | None = None
        for n in [1000] if quick else [1000, 10_000]:
            # APScheduler first: the tickwork rows of the same run are read against it.
            for kind, label, task_kind in (
                ("aps", "APScheduler 3.11 (thread pool, 10 threads)", "sync"),
                ("sync", "tickwork", "sync"),
                ("async", "tickwork", "async"),
                ("floor", f"tickwork, max_concurrent {n:,} (the floor)", "async"),
            ):
                if kind == "aps" and n > 1000:
                    continue  # its adds alone (about 100/s) would take minutes
                r = await isolated("tw_worker", kind, n, fresh_db(tmp, f"worker-{kind}-{n}"))
                late = "" if r["added_before_due"] else " (added after due)"
                if kind == "aps":
                    aps_all = r["all_started"]
                ratio = (
                    f"{r['all_started'] / aps_all:.2f}x"
                    if aps_all and n == 1000 and r["all_started"] == r["all_started"]
                    else ""
                )
                print(
                    f"| {label} | {task_kind} | {n:,} | {r['started']:,} | {ms(r['p50'])} | "
                    f"{ms(r['all_started'])}{late} | {ratio} | {r['worker_cpu']:.2f} s |",
                    flush=True,
                )
        print()

    if "scale" in names:
        print("## Scale: stored schedules\n")
        print(
            "| scheduler | schedules | adds/s (one call each) | start to first fire | RSS | idle CPU |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for n in [20_000] if quick else [100_000, 1_000_000]:
            tw = await isolated("tw_scale", n, fresh_db(tmp, f"tw-scale-{n}"))
            print(
                f"| tickwork | {n:,} | {tw['add_rate']:,.0f} | {tw['start_to_first_fire']:.2f} s | "
                f"{tw['rss_mb']:.0f} MiB | {tw['idle_cpu'] * 100:.2f} % |",
                flush=True,
            )
        rate = await isolated("aps_add_rate", 5000 if quick else 20_000, fresh_db(tmp, "aps-add"))
        print(
            f"| APScheduler 3.11 | {5000 if quick else 20_000:,} | {rate:,.0f} | | | |\n",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
