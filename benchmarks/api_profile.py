"""Where a REST API request spends its time: the app alone, in-process over ASGI.

    python benchmarks/api_profile.py                       # GET /schedules/{id}
    python benchmarks/api_profile.py --list                # GET /schedules?limit=50
    python benchmarks/api_profile.py --list --profile 40   # and the top 40 of cProfile
    python benchmarks/api_profile.py --db postgres         # on a fresh PostgreSQL database
    python benchmarks/api_profile.py --api-token           # as an API token's holder
    python benchmarks/api_profile.py --clients 50          # 50 requests at a time

``create_app`` over a started ``Scheduler`` on a fresh SQLite file (or PostgreSQL
database, made and dropped on the server of ``--pg``) with 50 schedules,
called one request at a time (or ``--clients`` at a time) with no HTTP server and no other thread busy: prints the
wall and CPU time per request (this process's: on PostgreSQL the server's backend
works besides), then (``--profile N``) cProfile's N functions of most
cumulative time. What HTTP adds is the floor of ``benchmarks/api.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchmarks.nodes_worker  # noqa: F401  (registers nodes:noop)
from benchmarks.api import cpu_seconds
from tickwork.api.app import create_app
from tickwork.api.settings import ApiSettings
from tickwork.engine.registry import REGISTRY
from tickwork.engine.scheduler import Scheduler


@contextlib.contextmanager
def database(db: str, pg: str) -> Iterator[str]:
    """The URL of a fresh database: a SQLite file, or a PostgreSQL database (either
    removed after)."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tickwork-api-profile-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'p.db'}"
        return
    from benchmarks.api import pg_database

    with pg_database(pg) as url:
        yield url


def backend_pids(url: str) -> list[int]:
    """The server processes of the database's sessions (PostgreSQL on this machine;
    none for SQLite): their CPU time is the request's too."""
    if not url.startswith("postgresql"):
        return []
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


async def main(
    url: str, listing: bool, n: int, profile: int, api_token: bool, clients: int
) -> None:
    path = "/api/v1/schedules" if listing else "/api/v1/schedules/fixed-3"
    async with Scheduler(url, engine=False, registry=REGISTRY) as scheduler:
        for k in range(50):
            await scheduler.add_schedule("nodes:noop", "manual", id=f"fixed-{k}", owner="admin")
        bearer = "profile-token"
        if api_token:
            made = await scheduler.create_token("admin", admin=True)
            assert made is not None
            bearer = made[1]
        settings = dataclasses.replace(
            ApiSettings(), admin_token="profile-admin-token", rate_limit=0
        )
        app = create_app(scheduler, settings)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"limit=50" if listing else b"",
            "root_path": "",
            "headers": [(b"host", b"x"), (b"authorization", f"Bearer {bearer}".encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async def one_by_one(count: int) -> None:
            for _ in range(count):
                await app(dict(scope), receive, send)

        async def calls(count: int) -> None:
            await asyncio.gather(*(one_by_one(count // clients) for _ in range(clients)))

        await calls(200)  # warm up
        assert set(statuses) == {200}, statuses[:3]
        backends = backend_pids(url)
        server = sum(map(cpu_seconds, backends))
        wall, cpu = time.perf_counter(), time.process_time()
        await calls(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server = sum(map(cpu_seconds, backends)) - server
        also = f", PostgreSQL's backends {server / n * 1e6:,.0f} µs" if backends else ""
        print(
            f"{path}: {wall / n * 1e6:,.0f} µs wall, {cpu / n * 1e6:,.0f} µs CPU per request" + also
        )
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await calls(n)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", action="store_true", help="a page of 50 instead of one")
    parser.add_argument("-n", type=int, default=0, help="requests (default 2,000; list 300)")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--clients", type=int, default=1, help="requests at once (default 1: one at a time)"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "TICKWORK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--api-token", action="store_true", help="call with an API token, not the admin token"
    )
    args = parser.parse_args()
    with database(args.db, args.pg) as url:
        n = args.n or (300 if args.list else 2000)
        asyncio.run(main(url, args.list, n, args.profile, args.api_token, args.clients))
