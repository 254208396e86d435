"""Many tickwork nodes on one PostgreSQL database, and APScheduler 4.0.0a6 on the same server.

    python benchmarks/nodes.py            # everything (about 5 minutes)
    python benchmarks/nodes.py --quick    # smaller sizes (about 2 minutes)
    python benchmarks/nodes.py commit throughput burst lag apscheduler   # pick scenarios

Every scenario gets a fresh database on the server at ``--pg`` (default
``$TICKWORK_TEST_PG_URL`` or ``postgresql://postgres@127.0.0.1:5432/test``) and real
``tickwork worker`` processes (``--import benchmarks.nodes_worker``, no-op task). Every
tickwork run is durable: committed ``running`` with a lease before its task starts, and
its end committed after. Results are printed as Markdown.

- ``commit``: this machine's single-row commit rate (a tiny psycopg loop), the ceiling.
- ``throughput``: N runs due at the same instant, drained by 1, 2 and 4 worker
  processes; runs/s = N / (last finished - due).
- ``burst``: 1,000 one-time schedules due at the same instant, one node: when did the
  last one start (the task's own clock, minus the scheduled time)?
- ``lag``: schedules firing every second, their fire times spread evenly over the
  second: fire lag (task start - scheduled time) p50/p99 under a steady load.
- ``apscheduler``: the same burst and throughput for APScheduler 4.0.0a6 with its
  SQLAlchemy data store (asyncpg) and asyncpg event broker, run from a separate virtual
  environment (``--aps-python``, default ``/tmp/aps4venv/bin/python``; made with
  ``python -m venv /tmp/aps4venv && /tmp/aps4venv/bin/pip install apscheduler==4.0.0a6
  sniffio 'sqlalchemy[asyncio]' asyncpg anyio==4.9.0``; with the newest anyio, 4.16,
  its asyncpg event broker fails with ``NoEventLoopError`` and no job ever runs).

Duplicates are counted in every scenario: each run must have exactly one attempt, and
each run id must have been executed exactly once across all processes. The command
exits 1 if any scenario saw one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil
import psycopg

import benchmarks.nodes_worker  # noqa: F401  (registers nodes:noop in this process too)
import tickwork
from tickwork import SyncScheduler
from tickwork.engine.ids import new_id
from tickwork.models import Run
from tickwork.store.url import open_store

DEFAULT_PG = os.environ.get("TICKWORK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
APS_SCRIPT = ROOT / "benchmarks" / "nodes_aps4.py"

duplicates_seen = 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms(x: float) -> str:
    return f"{x * 1000:,.0f} ms" if x == x else "n/a"


# -- databases and processes ---------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str, label: str) -> Iterator[str]:
    name = f"tw_bench_{label}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Workers:
    """``tickwork worker`` processes on one database."""

    def __init__(self, url: str, count: int, max_concurrent: int, tmp: Path) -> None:
        self.url = url
        self.out = Path(tempfile.mkdtemp(prefix="nodes-", dir=tmp))
        env = os.environ | {"TICKWORK_BENCH_OUT": str(self.out), "PYTHONUNBUFFERED": "1"}
        self.procs = []
        for i in range(count):
            log = (self.out / f"worker-{i}.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tickwork.cli",
                        "--db",
                        url,
                        "worker",
                        "--import",
                        "benchmarks.nodes_worker",
                        "--max-concurrent",
                        str(max_concurrent),
                        "--log-level",
                        "warning",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        deadline = time.monotonic() + 60
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT count(*) FROM nodes WHERE stopped_at IS NULL").fetchone()
                if row and row[0] == count:
                    break
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    self.__exit__()
                    raise RuntimeError(f"workers did not start: see {self.out}")
                time.sleep(0.05)
        time.sleep(0.5)  # let them settle into their idle sleep
        self._cpu0 = self.cpu_seconds()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        """Kill whatever still runs (after an error), so the database can be dropped."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.procs:
            t = psutil.Process(p.pid).cpu_times()
            total += t.user + t.system
        return total

    def cpu_used(self) -> float:
        return self.cpu_seconds() - self._cpu0

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            code = p.wait(60)
            if code != 0:
                raise RuntimeError(f"a worker exited {code}: see {self.out}")

    def executions(self) -> list[tuple[str, float, float]]:
        found: list[tuple[str, float, float]] = []
        for f in self.out.glob("*.json"):
            found.extend(tuple(e) for e in json.loads(f.read_text()))  # type: ignore[misc]
        return found


class MachineCPU:
    """Busy CPU-seconds of the whole machine (every core) between start and stop."""

    def __init__(self) -> None:
        self._t0 = psutil.cpu_times()

    def busy(self) -> float:
        t1 = psutil.cpu_times()
        idle = (t1.idle - self._t0.idle) + (t1.iowait - self._t0.iowait)
        total = sum(t1) - sum(self._t0)
        return total - idle


class DatabaseCPU:
    """CPU-seconds used by the PostgreSQL backends serving one database (their process
    titles name it), between start and ``used()``."""

    def __init__(self, url: str) -> None:
        self.name = urlsplit(url).path.lstrip("/")
        self._t0 = self._sample()

    def _sample(self) -> dict[int, float]:
        found = {}
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["name"] == "postgres" and f" {self.name} " in f" {cmd} ":
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    found[p.pid] = t.user + t.system
        return found

    def used(self) -> float:
        now = self._sample()
        return sum(v - self._t0.get(pid, 0.0) for pid, v in now.items())


class Profiler:
    """py-spy on each worker while it drains (``--profile DIR``): collapsed stacks of
    the thread holding the GIL, i.e. where the worker's Python CPU time goes."""

    def __init__(self, directory: Path | None, workers: Workers, label: str) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        for p in workers.procs:
            out = directory / f"{label}-{p.pid}.txt"
            self.procs.append(
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(p.pid),
                        "--rate",
                        "250",
                        "--gil",  # samples where Python holds the GIL: where CPU goes
                        "--format",
                        "raw",
                        "--output",
                        str(out),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            p.wait(30)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def count(url: str, sql: str, params: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def check_duplicates(url: str, executions: list[tuple[str, float, float]], expected: int) -> str:
    """Runs with more than one attempt, run ids executed twice, runs not executed."""
    global duplicates_seen
    per_run = Counter(e[0] for e in executions)
    twice = sum(1 for n in per_run.values() if n > 1)
    with psycopg.connect(url, autocommit=True) as conn:
        retried = conn.execute("SELECT count(*) FROM runs WHERE attempt > 1").fetchone()
        attempts = conn.execute("SELECT count(*) FROM attempts").fetchone()
        keys = conn.execute(
            "SELECT count(*) FROM (SELECT schedule_id, scheduled_for FROM runs"
            " WHERE trigger <> 'manual' GROUP BY 1, 2 HAVING count(*) > 1) d"
        ).fetchone()
    assert retried and attempts and keys
    extra_attempts = attempts[0] - len(per_run)
    dups = twice + int(retried[0]) + int(keys[0]) + max(0, extra_attempts)
    missing = expected - len(per_run)
    duplicates_seen += dups
    return f"{dups}" + (f" ({missing} not run)" if missing else "")


# -- scenarios -----------------------------------------------------------------------------


def commit_rate(admin_url: str, seconds: float, connections: int) -> float:
    """Single-row INSERT commits per second: ``connections`` threads, autocommit."""
    with fresh_database(admin_url, "commit") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, v text NOT NULL)")
        done = [0] * connections
        deadline = time.monotonic() + seconds

        def loop(i: int) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                n = 0
                while time.monotonic() < deadline:
                    conn.execute("INSERT INTO t (v) VALUES (%s)", ("x",))
                    n += 1
                done[i] = n

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return sum(done) / seconds


def throughput(
    admin_url: str,
    tmp: Path,
    nodes: int,
    n: int,
    max_concurrent: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    """``n`` runs due at one instant (made in one transaction, like ``run_now`` does one),
    drained by ``nodes`` worker processes."""
    with fresh_database(admin_url, f"tp{nodes}") as url:
        store = open_store(url)  # applies the migrations before the workers start
        with Workers(url, nodes, max_concurrent, tmp) as workers:
            result = _drain(url, store, workers, nodes, n, profile)
    return result


def _drain(
    url: str, store: Any, workers: Workers, nodes: int, n: int, profile: Path | None
) -> dict[str, Any]:
    """Insert the runs due in a moment, wait until the workers have run them all."""
    now = datetime.now(UTC)
    due = now + timedelta(seconds=1.5 + n / 20_000)
    runs = [
        Run(
            id=new_id(),
            schedule_id=None,
            task="nodes:noop",
            scheduled_for=due,
            trigger="manual",
            due_at=due,
            created_at=now,
        )
        for _ in range(n)
    ]
    for i in range(0, n, 5000):
        store.insert_runs(runs[i : i + 5000])
    store.close()
    profiler = Profiler(profile, workers, f"throughput-{nodes}")
    if datetime.now(UTC) >= due:
        raise RuntimeError("inserting the runs took longer than planned")
    time.sleep(max(0.0, due.timestamp() - time.time()))
    cpu = MachineCPU()
    db_cpu = DatabaseCPU(url)
    workers_cpu0 = workers.cpu_used()
    wait_until(
        lambda: count(url, "SELECT count(*) FROM runs WHERE status = 'succeeded'") >= n,
        60 + n / 200,
        f"{n} runs to finish",
        interval=0.2,
    )
    busy = cpu.busy()
    worker_cpu = workers.cpu_used() - workers_cpu0
    pg_cpu = db_cpu.used()
    profiler.stop()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT max(finished_at), max(started_at) FROM runs WHERE status = 'succeeded'"
        ).fetchone()
        per_node = [
            r[0] for r in conn.execute("SELECT count(*) FROM runs GROUP BY node ORDER BY 1 DESC")
        ]
    assert row is not None
    last_finished, last_started = row
    workers.stop()
    executions = workers.executions()
    dups = check_duplicates(url, executions, n)
    elapsed = (last_finished - due).total_seconds()
    return {
        "nodes": nodes,
        "runs": n,
        "rate": n / elapsed,
        "elapsed": elapsed,
        "claimed_rate": n / (last_started - due).total_seconds(),
        "per_node": per_node,
        "dups": dups,
        "cpu_worker_us": worker_cpu / n * 1e6,
        "cpu_pg_us": pg_cpu / n * 1e6,
        "cpu_busy": busy / elapsed,
        "cpu_others": max(0.0, busy - worker_cpu - pg_cpu) / elapsed,
    }


def burst(admin_url: str, tmp: Path, n: int) -> dict[str, Any]:
    """``n`` one-time schedules due at the same instant; one node."""
    with fresh_database(admin_url, "burst") as url:
        with SyncScheduler(url, engine=False) as client:
            due = (datetime.now(UTC) + timedelta(seconds=5 + n / 500)).replace(microsecond=0)
            for i in range(n):
                client.add_schedule("nodes:noop", due.isoformat(), id=f"b{i}")
        with Workers(url, 1, max(100, n), tmp) as workers:
            if datetime.now(UTC) >= due:
                raise RuntimeError("adding the schedules took longer than planned")
            wait_until(
                lambda: count(url, "SELECT count(*) FROM runs WHERE status = 'succeeded'") >= n,
                (due - datetime.now(UTC)).total_seconds() + 60,
                f"{n} runs",
            )
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute("SELECT max(started_at) FROM runs").fetchone()
            assert row is not None
            workers.stop()
        executions = workers.executions()
        dups = check_duplicates(url, executions, n)
    lags = [started - scheduled for _, scheduled, started in executions]
    return {
        "runs": n,
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
        "all_started": max(lags) if len(lags) == n else float("nan"),
        "all_claimed": (row[0] - due).total_seconds(),
        "dups": dups,
    }


def steady_lag(
    admin_url: str, tmp: Path, nodes: int, schedules: int, seconds: int
) -> dict[str, Any]:
    """``schedules`` schedules every second, their fire times spread evenly over the
    second, for ``seconds`` seconds: fire lag under a steady load. The schedules are
    made before the workers start (default overlap ``skip``: a fire whose previous run
    of the same schedule is still waiting or running is recorded ``skipped``)."""
    with fresh_database(admin_url, "lag") as url:
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6 + schedules / 250)
        end = base + timedelta(seconds=seconds) - timedelta(microseconds=1)
        with SyncScheduler(url, engine=False) as client:
            for i in range(schedules):
                client.add_schedule(
                    "nodes:noop",
                    "every 1s",
                    id=f"s{i}",
                    start_at=base + timedelta(seconds=i / schedules),
                    end_at=end + timedelta(seconds=i / schedules),
                )
        with Workers(url, nodes, 100, tmp) as workers:
            if datetime.now(UTC) >= base:
                raise RuntimeError("adding the schedules took longer than planned")
            expected = schedules * seconds

            def settled() -> bool:
                return (
                    time.time() > end.timestamp() + 2
                    and count(
                        url,
                        "SELECT count(*) FROM runs WHERE status NOT IN"
                        " ('pending', 'running', 'retrying')",
                    )
                    >= expected
                )

            with contextlib.suppress(RuntimeError):  # report what ran, even if behind
                wait_until(settled, seconds + 60, f"{expected} runs", interval=0.2)
            with psycopg.connect(url, autocommit=True) as conn:
                statuses = dict(
                    conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
                )
            workers.stop()
        executions = workers.executions()
        dups = check_duplicates(url, executions, expected)
    lags = [started - scheduled for _, scheduled, started in executions]
    return {
        "nodes": nodes,
        "rate": schedules,
        "runs": len(lags),
        "p50": pct(lags, 50),
        "p99": pct(lags, 99),
        "max": max(lags) if lags else float("nan"),
        "not_run": expected - int(statuses.get("succeeded", 0)),
        "statuses": statuses,
        "dups": dups,
    }


def apscheduler(
    python: str, admin_url: str, scenario: str, processes: int, n: int
) -> dict[str, Any] | str:
    """Run ``nodes_aps4.py`` in APScheduler 4's virtual environment; its JSON result, or
    why it could not run."""
    if not Path(python).exists():
        return f"no interpreter at {python}"
    with fresh_database(admin_url, "aps") as url:
        proc = subprocess.run(
            [python, str(APS_SCRIPT), scenario, url, str(processes), str(n)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    everything = ["commit", "throughput", "burst", "lag", "apscheduler"]
    parser.add_argument("scenarios", nargs="*", default=everything, help=", ".join(everything))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=DEFAULT_PG, help="a database on the server to use")
    parser.add_argument("--aps-python", default="/tmp/aps4venv/bin/python")
    parser.add_argument(
        "--max-concurrent", type=int, default=500, help="worker --max-concurrent (throughput)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy each worker during the throughput runs; collapsed stacks in DIR",
    )
    parser.add_argument(
        "--revision", help="what to call the code measured (default: git describe --dirty)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(everything)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}: pick from {everything}")
    with tempfile.TemporaryDirectory(prefix="tickwork-nodes-") as tmp:
        return scenarios(args, Path(tmp))


def scenarios(args: argparse.Namespace, tmp: Path) -> int:
    """Run the scenarios asked for; the workers' files go in ``tmp``."""
    quick = args.quick
    with psycopg.connect(args.pg, autocommit=True) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
    assert server and sync and fsync
    commit = (
        args.revision
        or subprocess.run(
            # The tree of the code measured (PYTHONPATH may point at another checkout).
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(tickwork.__file__).parent,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    load = os.getloadavg()[0]
    print(
        f"# tickwork nodes on PostgreSQL ({datetime.now(UTC):%Y-%m-%d}, tickwork {commit},"
        f" {os.cpu_count()} cores, Python {sys.version.split()[0]}, PostgreSQL {server[0]}"
        f" on this machine, fsync={fsync[0]}, synchronous_commit={sync[0]};"
        f" load average at start {load:.1f})\n"
    )
    n_tp = 5_000 if quick else 20_000

    if "commit" in args.scenarios:
        print("## Raw single-row commits (psycopg, autocommit INSERT)\n")
        print("| connections | commits/s |")
        print("|---:|---:|")
        for c in (1, 4):
            print(f"| {c} | {commit_rate(args.pg, 2 if quick else 5, c):,.0f} |", flush=True)
        print()

    if "throughput" in args.scenarios:
        reps = 1 if quick else 3
        print(
            f"## Throughput: {n_tp:,} runs due at once, no-op task, worker"
            f" --max-concurrent {args.max_concurrent}\n"
        )
        print(
            f"Median of {reps} (the machine is shared: the last column says how busy other"
            " processes kept it).\n"
        )
        print(
            "| worker processes | runs/s (finished) | every try | claimed/s | drained in |"
            " runs per node | CPU µs/run: workers | CPU µs/run: PostgreSQL backends |"
            " cores busy (other processes) | duplicates |"
        )
        print("|---:|---:|---|---:|---:|---|---:|---:|---:|---:|")
        for nodes in (1, 2, 4):
            tries = [
                throughput(args.pg, tmp, nodes, n_tp, args.max_concurrent, args.profile)
                for _ in range(reps)
            ]
            r = sorted(tries, key=lambda t: t["rate"])[len(tries) // 2]
            dups = ", ".join(sorted({t["dups"] for t in tries}))
            every = " / ".join(f"{t['rate']:,.0f}" for t in tries)
            print(
                f"| {nodes} | {r['rate']:,.0f} | {every} |"
                f" {r['claimed_rate']:,.0f} | {r['elapsed']:.1f} s |"
                f" {' / '.join(f'{x:,}' for x in r['per_node'])} |"
                f" {r['cpu_worker_us']:,.0f} | {r['cpu_pg_us']:,.0f} |"
                f" {r['cpu_busy']:.2f} ({r['cpu_others']:.2f}) | {dups} |",
                flush=True,
            )
        print()

    if "burst" in args.scenarios:
        print("## Burst: 1,000 one-time schedules due at the same instant, one node\n")
        print("| try | all started after | lag p50 | lag p99 | all claimed (DB) | duplicates |")
        print("|---:|---:|---:|---:|---:|---:|")
        for i in range(1 if quick else 3):
            r = burst(args.pg, tmp, 1000)
            print(
                f"| {i + 1} | {ms(r['all_started'])} | {ms(r['p50'])} | {ms(r['p99'])} |"
                f" {ms(r['all_claimed'])} | {r['dups']} |",
                flush=True,
            )
        print()

    if "lag" in args.scenarios:
        secs = 8 if quick else 20
        print(f"## Fire lag: schedules every second, spread over the second, {secs} s\n")
        print(
            "| nodes | fires/s | runs executed | not run (why) | lag p50 | lag p99 | lag max |"
            " duplicates |"
        )
        print("|---:|---:|---:|---|---:|---:|---:|---:|")
        for nodes, rate in (
            ((1, 100), (1, 500), (2, 500))
            if quick
            else (
                (1, 100),
                (1, 500),
                (1, 1000),
                (2, 1000),
                (4, 1000),
            )
        ):
            r = steady_lag(args.pg, tmp, nodes, rate, secs)
            why = ", ".join(
                f"{n:,} {st}" for st, n in sorted(r["statuses"].items()) if st != "succeeded"
            )
            print(
                f"| {nodes} | {rate:,} | {r['runs']:,} | {r['not_run']:,}"
                f"{f' ({why})' if why else ''} | {ms(r['p50'])} | {ms(r['p99'])} |"
                f" {ms(r['max'])} | {r['dups']} |",
                flush=True,
            )
        print()

    if "apscheduler" in args.scenarios:
        print("## APScheduler 4.0.0a6 (SQLAlchemy data store + asyncpg event broker)\n")
        print("| scenario | processes | jobs | result |")
        print("|---|---:|---:|---|")
        b = apscheduler(args.aps_python, args.pg, "burst", 1, 1000)
        print(f"| burst (1,000 due at once) | 1 | 1,000 | {_aps_text(b)} |", flush=True)
        n_aps = 2_000 if quick else 5_000  # about 300 jobs/s: fewer, to finish in minutes
        for p in (1, 2, 4):
            r = apscheduler(args.aps_python, args.pg, "throughput", p, n_aps)
            print(f"| throughput | {p} | {n_aps:,} | {_aps_text(r)} |", flush=True)
        print()

    if duplicates_seen:
        print(f"**{duplicates_seen} duplicate(s) seen**")
        return 1
    return 0


def _aps_text(r: dict[str, Any] | str) -> str:
    if isinstance(r, str):
        return f"did not run: {r}"
    parts = []
    if "rate" in r:
        parts.append(f"{r['rate']:,.0f} jobs/s")
    if "all_started" in r:
        parts.append(f"all started after {ms(r['all_started'])}")
    if "p50" in r:
        parts.append(f"lag p50 {ms(r['p50'])}, p99 {ms(r['p99'])}")
    parts.append(f"{r.get('executed', '?'):,} executed, duplicates {r.get('dups', '?')}")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
