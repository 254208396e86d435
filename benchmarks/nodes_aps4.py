"""The APScheduler 4.0.0a6 side of ``benchmarks/nodes.py``; runs in APScheduler 4's own
virtual environment (the project pins APScheduler 3.11)::

    python nodes_aps4.py burst URL 1 1000          # one process, 1,000 due at once
    python nodes_aps4.py throughput URL 4 20000    # 4 processes drain 20,000 jobs

APScheduler uses its SQLAlchemy data store (asyncpg driver) and its asyncpg event broker
(LISTEN/NOTIFY) on the database ``URL``; tasks run on the event loop (``async``
executor) with no per-task limit. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

executed: list[tuple[int, float, float]] = []


async def job(i: int, scheduled: float) -> None:
    executed.append((i, scheduled, time.time()))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def make(url: str, role: str) -> tuple[Any, Any]:
    from apscheduler import AsyncScheduler
    from apscheduler._structures import TaskDefaults
    from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
    from apscheduler.eventbrokers.asyncpg import AsyncpgEventBroker
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    scheduler = AsyncScheduler(
        SQLAlchemyDataStore(engine),
        AsyncpgEventBroker.from_async_sqla_engine(engine),
        role=role,
        max_concurrent_jobs=1000,
        task_defaults=TaskDefaults(
            job_executor="async", max_running_jobs=None, misfire_grace_time=None
        ),
    )
    return engine, scheduler


async def burst(url: str, n: int) -> dict[str, Any]:
    from apscheduler.triggers.date import DateTrigger

    engine, scheduler = make(url, "both")
    async with scheduler:
        t0 = time.perf_counter()
        due = datetime.now(UTC) + timedelta(seconds=3 + n / 200)
        for i in range(n):
            await scheduler.add_schedule(
                job, DateTrigger(due), id=f"b{i}", args=[i, due.timestamp()]
            )
        add_rate = n / (time.perf_counter() - t0)
        if datetime.now(UTC) >= due:
            raise RuntimeError("adding the schedules took longer than planned")
        await scheduler.start_in_background()
        deadline = time.time() + (due.timestamp() - time.time()) + 120
        while len(executed) < n and time.time() < deadline:
            await asyncio.sleep(0.05)
        await scheduler.stop()
        await scheduler.wait_until_stopped()
    await engine.dispose()
    lags = [started - scheduled for _, scheduled, started in executed]
    per_job = Counter(i for i, _, _ in executed)
    return {
        "executed": len(executed),
        "all_started": max(lags) if len(per_job) == n else float("nan"),
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
        "dups": sum(1 for c in per_job.values() if c > 1),
        "add_rate": add_rate,
    }


# Small blocking file operations, kept out of the async functions (they take microseconds).


def _touch(path: Path) -> None:
    path.touch()


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _exists(path: Path) -> bool:
    return path.exists()


def _count(directory: Path, pattern: str) -> int:
    return len(list(directory.glob(pattern)))


def _spawn(url: str, go: Path, stop: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "_worker", url, str(go), str(stop), str(out)]
    )


async def worker(url: str, go: Path, stop: Path, out: Path) -> None:
    """One process of the throughput scenario: start at the instant written in ``go``,
    run until ``stop`` exists, then write what it executed to ``out``."""
    engine, scheduler = make(url, "worker")
    async with scheduler:
        _touch(out.parent / f"{out.name}.ready")
        while not _read(go):
            await asyncio.sleep(0.01)
        await asyncio.sleep(max(0.0, float(_read(go)) - time.time()))
        await scheduler.start_in_background()
        while not _exists(stop):
            await asyncio.sleep(0.05)
        await scheduler.stop()
        await scheduler.wait_until_stopped()
    await engine.dispose()


async def throughput(url: str, processes: int, n: int) -> dict[str, Any]:
    from sqlalchemy import text

    tmp = Path(tempfile.mkdtemp(prefix="aps4-"))
    go, stop = tmp / "go", tmp / "stop"
    engine, client = make(url, "scheduler")
    async with client:  # creates the tables, so the workers do not race to
        procs = [_spawn(url, go, stop, tmp / f"{i}") for i in range(processes)]
        t0 = time.perf_counter()
        for i in range(n):
            await client.add_job(job, args=[i, 0.0])
        add_rate = n / (time.perf_counter() - t0)
        while _count(tmp, "*.ready") < processes:
            await asyncio.sleep(0.05)
        start = time.time() + 1.0
        _write(go, repr(start))
        async with engine.connect() as conn:
            deadline = time.time() + 60 + n / 50
            while time.time() < deadline:
                left = (await conn.execute(text("SELECT count(*) FROM jobs"))).scalar_one()
                await conn.commit()
                if left == 0:
                    break
                await asyncio.sleep(0.2)
    await engine.dispose()
    _touch(stop)
    for p in procs:
        p.wait(120)
    done: list[tuple[int, float, float]] = []
    per_process = []
    for i in range(processes):
        f = tmp / f"{i}"
        rows = json.loads(f.read_text()) if f.exists() else []
        per_process.append(len(rows))
        done.extend(rows)
    per_job = Counter(r[0] for r in done)
    last = max(r[2] for r in done)
    return {
        "executed": len(done),
        "rate": n / (last - start),
        "per_process": per_process,
        "dups": sum(1 for c in per_job.values() if c > 1) + (n - len(per_job)),
        "add_rate": add_rate,
    }


def main() -> None:
    if sys.argv[1] == "_worker":
        url, go, stop, out = sys.argv[2:6]
        asyncio.run(worker(url, Path(go), Path(stop), Path(out)))
        Path(out).write_text(json.dumps(executed))
        return
    scenario, url, processes, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if scenario == "burst":
        result = asyncio.run(burst(url, n))
    else:
        result = asyncio.run(throughput(url, processes, n))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
