"""Fixtures for the store suite: an opened store on SQLite and on PostgreSQL, records, planners.

Every instant is passed in explicitly (``T0`` and offsets): nothing here reads the clock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickwork.models import AttemptOutcome, FirePlan, PlannedRun, Run, Schedule
from tickwork.store import Store, open_store
from tickwork.store import migrate as migrations
from tickwork.store.sql import SqlStore
from tickwork.store.sqlite import SQLiteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORKER = Path(__file__).with_name("store_worker.py")


def at(seconds: float) -> datetime:
    """``T0`` plus some seconds."""
    return T0 + timedelta(seconds=seconds)


def new_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


def finish_one(
    store: Store,
    run_id: str,
    node_id: str,
    attempt: int,
    outcome: AttemptOutcome,
    now: datetime,
) -> Run | None:
    """One attempt's end through ``finish_attempts``, as the engine writes ends."""
    return store.finish_attempts([(run_id, node_id, attempt, outcome)], now)[0]


def make_schedule(sid: str = "s1", task: str = "t", **fields: object) -> Schedule:
    """A schedule due at ``T0`` unless told otherwise."""
    values: dict[str, object] = {
        "schedule": "1s",
        "next_fire_at": T0,
        "created_at": T0,
        "updated_at": T0,
        "anchor": T0,
    }
    values.update(fields)
    return Schedule(id=sid, task=task, **values)  # type: ignore[arg-type]


def make_run(
    schedule: Schedule | None,
    scheduled_for: datetime,
    *,
    task: str = "t",
    trigger: str = "manual",
    **fields: object,
) -> Run:
    values: dict[str, object] = {
        "due_at": scheduled_for,
        "created_at": scheduled_for,
        "priority": schedule.priority if schedule else 0,
    }
    values.update(fields)
    return Run(
        id=new_id(),
        schedule_id=schedule.id if schedule else None,
        task=schedule.task if schedule else task,
        scheduled_for=scheduled_for,
        trigger=trigger,  # type: ignore[arg-type]
        **values,  # type: ignore[arg-type]
    )


Planner = Callable[[Schedule, Sequence[Run], datetime], FirePlan]


def every_second(status: str = "pending") -> Planner:
    """Fire every whole second from ``next_fire_at`` up to now, each fire one run."""

    def plan(schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        assert schedule.next_fire_at is not None
        times = []
        t = schedule.next_fire_at
        while t <= now:
            times.append(t)
            t += timedelta(seconds=1)
        runs = tuple(
            PlannedRun(
                id=new_id(),
                scheduled_for=x,
                due_at=x,
                status=status,  # type: ignore[arg-type]
                error=None if status == "pending" else f"{status} on purpose",
            )
            for x in times
        )
        return FirePlan(
            runs=runs,
            next_fire_at=t,
            last_fire_at=times[-1] if times else schedule.last_fire_at,
            execution_count=schedule.execution_count + len(times),
            status="active",
        )

    return plan


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[SQLiteStore]:
    """An opened store on SQLite alone, for what only SQLite has (its files, its locks)."""
    store = open_store(sqlite_url)
    assert isinstance(store, SQLiteStore)
    try:
        yield store
    finally:
        store.close()


def open_at_version(db_url: str, version: int) -> SqlStore:
    """A store whose schema stops at ``version``, as a tickwork of that time left it;
    its ``upgrade()`` applies every migration since. An upgrade test writes the rows of
    then in between (``old_node``, ``by_hand`` with ``sql_instant``)."""
    every = migrations.load_migrations

    def up_to(dialect: str) -> list[tuple[int, str]]:
        return [(v, sql) for v, sql in every(dialect) if v <= version]

    migrations.load_migrations = up_to
    try:
        store = open_store(db_url)
    finally:
        migrations.load_migrations = every
    assert isinstance(store, SqlStore) and store.schema_version() == version
    return store


def old_node(store: SqlStore, node_id: str = "n1") -> None:
    """A node row with only the columns every schema had, as an older tickwork wrote it."""
    with store._write() as tx:
        tx.execute(
            "INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, tasks)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (node_id, "h", 1, store._ts(T0), store._ts(T0), "[]"),
        )


def sql_instant(db_url: str, when: datetime) -> str:
    """``when`` as an SQL literal of the column type each database stores instants in:
    timestamptz, or microseconds since the epoch on SQLite."""
    if db_url.startswith("postgres"):
        return f"'{when.isoformat()}'"
    return str(int(when.timestamp() * 1_000_000))


def by_hand(db_url: str, *statements: str) -> None:
    """Run SQL on the database as an operator would, outside tickwork."""
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            for sql in statements:
                conn.execute(sql)
    else:
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as pg:
            for sql in statements:
                pg.execute(sql)  # type: ignore[arg-type]


def fire_all(store: Store, now: datetime, limit: int = 1000) -> list[Run]:
    return store.fire_due(now, every_second(), limit)


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start ``store_worker.py`` with its arguments; it talks over stdin/stdout."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def reap(proc: subprocess.Popen[str]) -> None:
    """Kill the worker if it still runs, wait for it, close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


@contextlib.contextmanager
def worker(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = spawn(*args)
    try:
        yield proc
    finally:
        reap(proc)
