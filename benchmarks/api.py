"""The REST API under load: `tickwork serve` on SQLite and on PostgreSQL, next to a bare
FastAPI endpoint on the same machine (the floor), and the engine's fire lag while the
API is busy.

    python benchmarks/api.py                 # everything (about 3 minutes)
    python benchmarks/api.py --quick         # shorter phases, for a smoke run
    python benchmarks/api.py --db sqlite     # one database only
    python benchmarks/api.py --lag-only      # the fire lag phases only

For each operation (create a schedule, get one, list 50, run one now), 50 clients on
loopback send requests back to back over keep-alive connections for a few seconds;
requests/s and latency p50/p99 are printed as Markdown. The clients are a minimal
HTTP/1.1 client on asyncio in this process (a few microseconds per request), so they
take as little as possible of the two cores the server shares with them.

Fire lag: 200 schedules fire every second (their fire times spread over the second)
with a no-op task that notes when it started; lag = task start - scheduled time,
first with the API idle, then while 50 clients read (get and list) as fast as they
can. The goal: p99 under load within twice the p99 without.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-admin-" + uuid.uuid4().hex
CLIENTS = 50


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a minimal HTTP/1.1 client ---------------------------------------------------------


class Conn:
    """One keep-alive connection; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(payload)}\r\n"
            + ("Content-Type: application/json\r\n" if body is not None else "")
            + "\r\n"
        )
        self.writer.write(head.encode() + payload)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


Op = Callable[[Conn, int, int], Awaitable[int]]

#: The server process listening on each port (for its CPU time).
SERVER_PIDS: dict[int, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux; NaN elsewhere). Unlike
    requests/s it hardly depends on what else the machine runs, so it compares two
    servers measured on a shared machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, op: Op, seconds: float, clients: int = CLIENTS) -> dict[str, Any]:
    """``clients`` connections calling ``op`` back to back for ``seconds``."""
    latencies: list[float] = []
    errors: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def client(c: int) -> None:
        conn = Conn(port)
        i = 0
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                status = await op(conn, c, i)
                latencies.append(time.perf_counter() - t0)
                if status >= 300:
                    errors[status] = errors.get(status, 0) + 1
                i += 1
        finally:
            await conn.close()

    pid = SERVER_PIDS.get(port)
    cpu0 = cpu_seconds(pid) if pid else float("nan")
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) if pid else float("nan")) - cpu0
    return {
        "cpu_per_request": cpu / max(1, len(latencies)),
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": pct(latencies, 50),
        "p99": pct(latencies, 99),
        "errors": errors,
    }


# -- servers ---------------------------------------------------------------------------


@contextlib.contextmanager
def serve(db: str, out: Path) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "TICKWORK_ADMIN_TOKEN": TOKEN,
        "TICKWORK_RATE_LIMIT": "0",  # no limit: the benchmark is one token
        "TICKWORK_BENCH_OUT": str(out),
        # This tree's tickwork first, whatever is installed (an A/B against another
        # checkout runs that checkout's copy of this file).
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    # Its log (a line per request at INFO) goes to a file: a pipe nobody reads while the
    # benchmark runs would fill and stall the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickwork.cli", "--db", db, "serve", "--port", str(port),
             "--import", "benchmarks.nodes_worker"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        SERVER_PIDS[port] = proc.pid
        try:
            wait_up(port, proc, log=log)
            yield port
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def floor() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.api_floor:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    SERVER_PIDS[port] = proc.pid
    try:
        wait_up(port, proc, path="/ping")
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def wait_up(
    port: int, proc: subprocess.Popen[bytes], path: str = "/health", log: Any = None
) -> None:
    """Until ``port`` answers ``path``; the server's exit, with the end of its ``log``
    (a file it writes its stderr to), is an error."""
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            err = ""
            if log is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
            raise RuntimeError(f"the server exited with {proc.returncode}: {err[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"no server answered on port {port}")


@contextlib.contextmanager
def pg_database(base: str) -> Iterator[str]:
    import psycopg

    name = f"tw_bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[arg-type]


# -- the operations --------------------------------------------------------------------


def ops(run: str) -> dict[str, Op]:
    async def create(conn: Conn, c: int, i: int) -> int:
        body = {"id": f"c-{run}-{c}-{i}", "task": "nodes:noop", "schedule": "manual"}
        return (await conn.request("POST", "/api/v1/schedules", body))[0]

    async def get(conn: Conn, c: int, i: int) -> int:
        return (await conn.request("GET", f"/api/v1/schedules/fixed-{(c + i) % 50}"))[0]

    async def list_(conn: Conn, c: int, i: int) -> int:
        return (await conn.request("GET", "/api/v1/schedules?limit=50"))[0]

    async def run_now(conn: Conn, c: int, i: int) -> int:
        return (await conn.request("POST", f"/api/v1/schedules/fixed-{(c + i) % 50}/run", {}))[0]

    return {"create": create, "get": get, "list (50)": list_, "run now": run_now}


async def floor_ping(conn: Conn, c: int, i: int) -> int:
    return (await conn.request("GET", "/ping"))[0]


async def setup(port: int) -> None:
    conn = Conn(port)
    for k in range(50):
        body = {"id": f"fixed-{k}", "task": "nodes:noop", "schedule": "manual"}
        status, data = await conn.request("POST", "/api/v1/schedules", body)
        if status >= 300:
            raise RuntimeError(f"setup failed: {status} {data[:300]!r}")
    await conn.close()


async def add_ticking(port: int, n: int, start: datetime, end: datetime) -> None:
    conn = Conn(port)
    for k in range(n):
        offset = timedelta(seconds=k / n)  # fire times spread evenly over the second
        body = {
            "id": f"tick-{k}",
            "task": "nodes:noop",
            "schedule": "every 1s",
            "start_at": (start + offset).isoformat(),
            "end_at": (end + offset).isoformat(),
        }
        status, data = await conn.request("POST", "/api/v1/schedules", body)
        if status >= 300:
            raise RuntimeError(f"adding ticking schedules failed: {status} {data[:300]!r}")
    await conn.close()


def lags_between(out: Path, start: float, end: float) -> list[float]:
    lags: list[float] = []
    for f in out.glob("*.json"):
        for run_id, scheduled, started in json.loads(f.read_text()):
            if start <= scheduled < end and str(run_id):
                lags.append(started - scheduled)
    return lags


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x == x else "n/a"


def row(server: str, operation: str, r: dict[str, Any], floor_rps: float) -> str:
    bad = f" ({r['errors']})" if r["errors"] else ""
    return (
        f"| {server} | {operation} | {r['rps']:,.0f} | {r['rps'] / floor_rps:.0%} | "
        f"{ms(r['p50'])} | {ms(r['p99'])} | {r['cpu_per_request'] * 1e6:,.0f} µs |{bad}"
    )


async def bench_db(
    label: str, db: str, seconds: float, lag_seconds: int, floor_rps: float, lag_only: bool
) -> None:
    with tempfile.TemporaryDirectory(prefix="tickwork-bench-api-") as folder:
        out = Path(folder)
        busy = await _bench_served(label, db, out, seconds, lag_seconds, floor_rps, lag_only)
        # The engine process writes its tasks' starts when it exits: read once it did.
        idle = lags_between(out, *busy["idle"])
        loaded = lags_between(out, *busy["loaded"])
    ratio = pct(loaded, 99) / pct(idle, 99) if idle and loaded else float("nan")
    print(
        f"\nFire lag on {label}, 200 schedules every second: idle p50 {ms(pct(idle, 50))}, "
        f"p99 {ms(pct(idle, 99))} ({len(idle)} runs); under read load "
        f"({busy['rps']:,.0f} req/s) p50 {ms(pct(loaded, 50))}, p99 {ms(pct(loaded, 99))} "
        f"({len(loaded)} runs): {ratio:.2f}x\n",
        flush=True,
    )


async def _bench_served(
    label: str,
    db: str,
    out: Path,
    seconds: float,
    lag_seconds: int,
    floor_rps: float,
    lag_only: bool,
) -> dict[str, Any]:
    """The operations, then the fire lag's two phases, on a server started for them;
    returns the read load's figures and the two phases' (start, end)."""
    with serve(db, out) as port:
        await setup(port)
        run = uuid.uuid4().hex[:6]
        for name, op in ops(run).items() if not lag_only else ():
            r = await load(port, op, seconds)
            print(row(label, name, r, floor_rps), flush=True)
        # Fire lag: idle first, then under load.
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        idle_end = start + timedelta(seconds=lag_seconds)
        busy_end = idle_end + timedelta(seconds=lag_seconds)
        await add_ticking(port, 200, start, busy_end - timedelta(seconds=1))
        await asyncio.sleep(max(0.0, idle_end.timestamp() - time.time()))
        reads = ops(run)

        async def mixed(conn: Conn, c: int, i: int) -> int:
            return await (reads["get"] if i % 2 else reads["list (50)"])(conn, c, i)

        busy = await load(port, mixed, busy_end.timestamp() - time.time())
        await asyncio.sleep(2)
    busy["idle"] = (start.timestamp(), idle_end.timestamp())
    busy["loaded"] = (idle_end.timestamp(), busy_end.timestamp())
    return busy


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "TICKWORK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lag-only", action="store_true", help="the fire lag phases only")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else 8.0
    lag_seconds = 5 if args.quick else 15
    print(
        f"# tickwork API benchmark ({datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, {CLIENTS} clients on loopback, "
        f"{seconds:g} s per operation, load average {os.getloadavg()[0]:.1f})\n"
    )
    print("| server | operation | requests/s | of the floor | p50 | p99 | server CPU/request |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with floor() as port:
        r = await load(port, floor_ping, seconds)
        floor_rps = r["rps"]
        print(row("bare FastAPI (floor)", "GET /ping", r, floor_rps), flush=True)
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tickwork-bench-api-db-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'api.db'}"
            await bench_db("SQLite", url, seconds, lag_seconds, floor_rps, args.lag_only)
    if args.db in ("postgres", "both"):
        with pg_database(args.pg) as url:
            await bench_db("PostgreSQL", url, seconds, lag_seconds, floor_rps, args.lag_only)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
