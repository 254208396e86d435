"""What only the SQLite store does: WAL and sync levels, query plans, pids, file watching."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from datetime import timedelta

import pytest

from tickwork.errors import StoreError
from tickwork.models import AttemptOutcome, Node
from tickwork.store import open_store
from tickwork.store.base import ClaimRequest
from tickwork.store.sqlite import MIN_SQLITE, SQLiteStore, check_sqlite_version
from tickwork.store.sqlite_bulk import ROWS_PER_STATEMENT, _chunks

from .conftest import T0, at, every_second, make_schedule, worker


def _pragma(store: SQLiteStore, name: str) -> object:
    with store._connection() as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_wal_and_synchronous_normal_by_default(lite: SQLiteStore) -> None:
    assert _pragma(lite, "journal_mode") == "wal"
    assert _pragma(lite, "synchronous") == 1  # NORMAL
    assert _pragma(lite, "busy_timeout") == 10_000


def test_synchronous_full_on_request(sqlite_url: str) -> None:
    store = open_store(sqlite_url + "?synchronous=full&busy_timeout=3")
    assert isinstance(store, SQLiteStore)
    try:
        assert _pragma(store, "synchronous") == 2  # FULL
        assert _pragma(store, "busy_timeout") == 3000
    finally:
        store.close()


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        (
            "SELECT next_fire_at FROM schedules WHERE status = 'active'"
            " AND next_fire_at IS NOT NULL ORDER BY next_fire_at LIMIT 1",
            "schedules_due",
        ),
        (
            "SELECT id FROM schedules WHERE status = 'active' AND next_fire_at <= 5"
            " ORDER BY next_fire_at, id LIMIT 10",
            "schedules_due",
        ),
        (
            "SELECT due_at FROM runs WHERE status IN ('pending', 'retrying')"
            " ORDER BY due_at LIMIT 1",
            "runs_waiting",
        ),
        (
            "SELECT id FROM runs WHERE schedule_id IN (SELECT value FROM json_each('[]'))"
            " AND (status IN ('pending', 'running') OR status = 'retrying')",
            "runs_active",
        ),
        (
            "SELECT id FROM runs WHERE status = 'running' AND lease_until < 5",
            "runs_running",
        ),
    ],
)
def test_hot_queries_use_their_index(lite: SQLiteStore, sql: str, index: str) -> None:
    with lite._connection() as conn:
        plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert index in plan, plan
    assert not re.search(r"SCAN (runs|schedules)(?! USING)", plan), plan  # no table scan


def test_running_runs_of_a_schedule_are_counted_through_their_own_index(
    lite: SQLiteStore,
) -> None:
    """runs_active (pending, running and retrying runs) must not serve a count of running
    runs: a schedule's pending runs would be read too."""
    with lite._connection() as conn:
        plan = " ".join(
            row[-1]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT schedule_id, COUNT(*) FROM runs"
                " WHERE status = 'running' AND schedule_id IN ('a', 'b') GROUP BY schedule_id"
            )
        )
    assert "runs_running_schedule" in plan, plan


def test_a_claim_or_an_end_tests_the_partial_indexes_by_comparisons(lite: SQLiteStore) -> None:
    """SQLite 3.40 tests an IN list of three or more values against a temporary b-tree,
    for each row an UPDATE changes: the conditions of the partial indexes on runs,
    checked at every claim and end, are written with lists of at most two
    (runs_active: about 8 % of a claim and an end's work, migration 0014; runs_final and
    runs_duration: about 17 %, migration 0015)."""
    with lite._connection() as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs'"
            " AND sql LIKE '%WHERE%'"
        ).fetchall()
    assert {"runs_active", "runs_final", "runs_duration"} <= {name for name, _ in rows}
    for name, sql in rows:
        condition = sql.split("WHERE", 1)[1]
        for values in re.findall(r"IN\s*\(([^)]*)\)", condition):
            assert values.count(",") <= 1, (name, condition)


def test_dead_nodes_by_stale_heartbeat(lite: SQLiteStore) -> None:
    lite.register_node(Node("old", "elsewhere", 1, T0, at(0)))
    lite.register_node(Node("fresh", "elsewhere", 2, T0, at(50)))
    assert lite.dead_nodes(at(60), timedelta(seconds=30)) == ["old"]
    assert lite.dead_nodes(at(60), 5.0) == ["fresh", "old"]
    lite.heartbeat("old", at(59), at(89), [])
    assert lite.dead_nodes(at(60), 30) == []


def test_dead_nodes_include_a_killed_process_on_this_host(lite: SQLiteStore) -> None:
    with worker("node", lite.url, "w1") as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        (node,) = lite.list_nodes()
        assert node.pid == proc.pid
        # Heartbeat fresh (registered at T0) and process alive: not dead.
        assert lite.dead_nodes(at(1), 3600) == []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert lite.dead_nodes(at(1), 3600) == ["w1"]
    # A node of another host is only judged by its heartbeat.
    lite.register_node(Node("far", "another-host", proc.pid, T0, T0))
    assert lite.dead_nodes(at(1), 3600) == ["w1"]


def test_a_leader_whose_process_died_is_replaced_at_once(lite: SQLiteStore) -> None:
    with worker("node", lite.url, "w1") as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert lite.try_lead("w1", at(0), at(30))
        assert not lite.try_lead("me", at(1), at(31))  # alive, lease valid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert lite.try_lead("me", at(1), at(31))


def test_wait_for_change_sees_another_process_commit(lite: SQLiteStore) -> None:
    assert lite.wait_for_change(0.05) is False  # nothing yet
    with worker("add", lite.url, "from-elsewhere") as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        lite.wait_for_change(0)  # start watching from here
        proc.stdin.write("go\n")
        proc.stdin.flush()
        started = time.monotonic()
        assert lite.wait_for_change(10) is True
        assert time.monotonic() - started < 2
        proc.wait(10)
    assert lite.get_schedule("from-elsewhere") is not None


def test_interrupt_wait_returns_promptly(lite: SQLiteStore) -> None:
    threading.Timer(0.1, lite.interrupt_wait).start()
    started = time.monotonic()
    assert lite.wait_for_change(10) is False
    assert time.monotonic() - started < 1


def test_a_store_is_usable_from_many_threads_at_once(lite: SQLiteStore) -> None:
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            for j in range(50):
                lite.add_schedule(make_schedule(f"s{i}-{j}"))
                lite.get_schedule(f"s{i}-{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(lite.list_schedules()) == 400


def test_the_file_is_readable_by_plain_sqlite(lite: SQLiteStore) -> None:
    lite.add_schedule(make_schedule("a"))
    with sqlite3.connect(lite._path) as conn:
        (version,) = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        (fire,) = conn.execute("SELECT next_fire_at FROM schedules").fetchone()
    assert version >= 1 and fire == int(T0.timestamp()) * 1_000_000


def test_a_fire_and_its_ends_span_many_multi_row_statements(lite: SQLiteStore) -> None:
    """Writes go in multi-row statements cut to the build's parameter limit: with a
    tiny limit, one fire of 50 schedules and their ends take many statements each, and
    every row lands exactly once."""
    lite.max_parameters = 45  # two runs (22 columns) per INSERT, few rows per UPDATE
    for i in range(50):
        lite.add_schedule(make_schedule(f"s{i}", data={"i": i}))
    result = lite.fire_and_claim(
        at(0), every_second(), 1000, ClaimRequest("n1", at(30), 100, ("t",), {})
    )
    assert len(result.fired) == len(result.claimed) == 50
    for s in lite.list_schedules():
        assert (s.next_fire_at, s.last_fire_at, s.execution_count) == (at(1), at(0), 1)
    ends = [
        (run.id, "n1", 1, AttemptOutcome(status="succeeded", result=run.data["i"]))
        for run in result.claimed
    ]
    finished = lite.finish_attempts(ends, at(2))
    assert [r.result for r in finished if r is not None] == [r.data["i"] for r in result.claimed]
    for run in result.claimed:
        stored = lite.get_run(run.id)
        assert stored is not None and stored.status == "succeeded"
        assert stored.result == run.data["i"] and stored.lease_until is None
        assert [(a.number, a.status, a.finished_at) for a in stored.attempts] == [
            (1, "succeeded", at(2))
        ]


@pytest.mark.parametrize(
    ("rows", "limit"), [(2000, 1363), (900, 1363), (7, 2), (5, 3), (1, 1), (0, 5)]
)
def test_multi_row_statements_come_in_a_few_sizes(rows: int, limit: int) -> None:
    """Compiling a multi-row statement costs as much as running it, and sqlite3 caches
    statements by text: pieces are powers of two within both limits, so fires of any
    size share a handful of statements, and every row is written once, in order."""
    pieces = list(_chunks(list(range(rows)), limit))
    assert [v for piece in pieces for v in piece] == list(range(rows))
    cap = min(limit, ROWS_PER_STATEMENT)
    for piece in pieces:
        assert len(piece) <= cap and len(piece) & (len(piece) - 1) == 0
    assert len({len(p) for p in pieces}) <= cap.bit_length()


def test_multi_row_updates_look_rows_up_by_key(lite: SQLiteStore) -> None:
    values = "(VALUES (1, 2, 3, 4, 5, 6, 7, 8, 'x'))"
    plans = {
        "runs": f"UPDATE runs SET status = u.column1 FROM {values} AS u WHERE runs.id = u.column9",
        "attempts": f"UPDATE attempts SET status = u.column1 FROM {values} AS u"
        " WHERE attempts.run_id = u.column9 AND attempts.number = u.column2",
    }
    with lite._connection() as conn:
        for table, sql in plans.items():
            plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert re.search(rf"SEARCH {table} USING", plan), plan


def test_an_sqlite_too_old_is_refused_naming_both_versions() -> None:
    check_sqlite_version(MIN_SQLITE)
    with pytest.raises(StoreError, match=r"needs SQLite 3\.38\.0 or newer.*uses SQLite 3\.31\.1"):
        check_sqlite_version((3, 31, 1))
