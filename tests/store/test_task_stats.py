"""``task_stats`` and ``count_runs`` against a plain computation over runs of known
durations: over all runs (read from the indexes of finished runs), since an instant and
for one owner (read by scanning the runs), on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from tickwork.models import AttemptOutcome, TaskStats
from tickwork.store import Store, open_store
from tickwork.store.dialect import statements
from tickwork.store.named_sql import fill
from tickwork.store.sql_stats import DURATION, EXECUTED, FINAL

from .conftest import at, finish_one, make_run, make_schedule

RUNS = 360
CLAIMED_AT = at(RUNS + 10)
STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "timed_out", "cancelled")


@dataclass(frozen=True)
class Made:
    """What the test made one run into."""

    task: str
    owner: str | None
    scheduled_for: datetime
    status: str
    seconds: float | None


def build(store: Store) -> list[Made]:
    """Runs of three tasks, two owners and manual runs; most finished with a known
    duration (ties and microseconds included), some running, pending or skipped."""
    sa = store.add_schedule(make_schedule("sa", task="t", owner="alice", overlap="replace"))
    sb = store.add_schedule(make_schedule("sb", task="u", owner="bob", overlap="replace"))
    made: dict[str, Made] = {}
    for i in range(RUNS):
        schedule = (sa, sb, None)[i % 3]
        task = schedule.task if schedule else ("t" if i % 2 else "v")
        owner = schedule.owner if schedule else None
        if i % 37 == 5:  # due after the claim: stays pending
            run = make_run(schedule, at(i), task=task, due_at=at(10 * RUNS))
            made[run.id] = Made(task, owner, at(i), "pending", None)
        elif i % 41 == 7:  # a skipped fire: never counted
            run = make_run(schedule, at(i), task=task, status="skipped")
            made[run.id] = Made(task, owner, at(i), "skipped", None)
        else:
            run = make_run(schedule, at(i), task=task)
            made[run.id] = Made(task, owner, at(i), "?", None)
        store.insert_runs([run])
    claimed = store.claim_runs(
        "n1", CLAIMED_AT, CLAIMED_AT + timedelta(hours=1), 10 * RUNS, ["t", "u", "v"], {}
    )
    items = []
    for k, run in enumerate(sorted(claimed, key=lambda r: r.id)):
        if k % 11 == 3:  # still running
            made[run.id] = Made(run.task, made[run.id].owner, run.scheduled_for, "running", None)
            continue
        status = STATUSES[k % len(STATUSES)]
        took = timedelta(microseconds=(k * 7919 % 200) * 123_457)  # ties: k mod 200
        outcome = AttemptOutcome(status, finished_at=CLAIMED_AT + took)  # type: ignore[arg-type]
        items.append((run.id, "n1", run.attempt, outcome))
        made[run.id] = Made(
            run.task, made[run.id].owner, run.scheduled_for, status, took.total_seconds()
        )
    half = len(items) // 2  # the batched path and the one-run path
    store.finish_attempts(items[:half], CLAIMED_AT)
    for item in items[half:]:
        finish_one(store, *item, CLAIMED_AT)
    assert {m.status for m in made.values()} >= {"pending", "running", "skipped", *STATUSES}
    return list(made.values())


def expected(made: list[Made]) -> list[TaskStats]:
    """Counts and percentiles computed plainly, percentiles by the statistics module."""
    out = []
    for task in sorted({m.task for m in made if m.status != "skipped"}):
        mine = [m for m in made if m.task == task and m.status != "skipped"]
        by = Counter(m.status for m in mine)
        took = sorted(m.seconds for m in mine if m.status in STATUSES[:5] and m.seconds is not None)
        cuts = statistics.quantiles(took, n=100, method="inclusive") if len(took) > 1 else []
        out.append(
            TaskStats(
                task=task,
                runs=len(mine),
                succeeded=by["succeeded"],
                failed=by["failed"],
                timed_out=by["timed_out"],
                lost=by["lost"],
                cancelled=by["cancelled"],
                p50_duration=cuts[49] if cuts else None,
                p95_duration=cuts[94] if cuts else None,
            )
        )
    return out


def close(got: list[TaskStats], want: list[TaskStats]) -> None:
    assert [(s.task, s.runs, s.succeeded, s.failed, s.timed_out, s.cancelled) for s in got] == [
        (s.task, s.runs, s.succeeded, s.failed, s.timed_out, s.cancelled) for s in want
    ]
    for g, w in zip(got, want, strict=True):
        assert g.p50_duration == pytest.approx(w.p50_duration, rel=1e-12)
        assert g.p95_duration == pytest.approx(w.p95_duration, rel=1e-12)


def test_task_stats_match_a_plain_computation(store: Store) -> None:
    made = build(store)
    everything = store.task_stats()
    close(everything, expected(made))
    # Over all runs the indexes answer; since before every run, the runs are read:
    # the same floats either way.
    assert store.task_stats(since=at(-1)) == everything
    since = at(RUNS // 2)
    close(store.task_stats(since=since), expected([m for m in made if m.scheduled_for >= since]))
    for owner in ("alice", "bob"):
        close(store.task_stats(owner=owner), expected([m for m in made if m.owner == owner]))
        close(
            store.task_stats(since=since, owner=owner),
            expected([m for m in made if m.owner == owner and m.scheduled_for >= since]),
        )
    assert store.task_stats(owner="nobody") == []


def test_count_runs_match_a_plain_computation(store: Store) -> None:
    made = build(store)
    for owner in (None, "alice", "bob"):
        mine = [m for m in made if owner is None or m.owner == owner]
        counts = store.count_runs(CLAIMED_AT, owner)
        want = Counter(m.status for m in mine)
        assert {k: v for k, v in counts.items() if k != "backlog" and v} == dict(want)
        assert counts["backlog"] == 0  # the pending runs are due later
        assert store.count_runs(at(10 * RUNS), owner)["backlog"] == want["pending"]


def test_stats_over_all_runs_read_the_indexes_only(sqlite_url: str) -> None:
    """The plans SQLite makes: the counts and each percentile walk a partial index,
    never the runs table, however many runs are kept."""
    store = open_store(sqlite_url)
    try:
        build(store)
    finally:
        store.close()
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        plans = {
            "counts": f"SELECT r.status, r.task, COUNT(*) FROM runs r WHERE {FINAL}"
            " GROUP BY r.status, r.task",
            "percentile": f"SELECT {DURATION} FROM runs r WHERE r.task = 't' AND {EXECUTED}"
            f" AND ({DURATION}) IS NOT NULL ORDER BY {DURATION} LIMIT 2 OFFSET 5",
        }
        # The statements the store runs, as named, walk the same index.
        named = statements("sqlite")
        plans["percentile, as named"] = named["durations_from"]
        plans["percentile from the end, as named"] = named["durations_from_longest"]
        for name, sql in plans.items():
            params = ("t", 5) if "?" in sql else ()
            explained = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(row[-1] for row in explained)
            # The percentile reads no row it skips: SQLite seeks the table lazily.
            index = (
                "COVERING INDEX runs_final" if name.startswith("counts") else "INDEX runs_duration"
            )
            assert f"USING {index}" in plan, (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)
    finally:
        conn.close()


#: The plan each statement that reads runs_final or runs_duration takes on SQLite. A
#: partial index serves a query only when the query states the index's condition, and
#: migration 0015 wrote both conditions anew (comparisons and lists of two joined by OR):
#: a statement that states the old form, or another, reads every run instead.
_STATS_PLANS = {
    "task_status_counts": "SEARCH r USING COVERING INDEX runs_final (status=?)",
    "every_task_status_count": "SEARCH r USING COVERING INDEX runs_final (status=?)",
    "status_counts": "SEARCH r USING COVERING INDEX runs_final (status=?)",
    "untimed_runs": "SEARCH r USING INDEX runs_duration (task=? AND <expr>=?)",
    "durations_from": "SEARCH r USING INDEX runs_duration (task=?)",
    "durations_from_longest": "SEARCH r USING INDEX runs_duration (task=?)",
}
#: The scanned durations (``since`` or ``owner`` given) seek the runs those select; over
#: every run (a condition that is always true) they walk runs_duration.
_SCANNED_PLANS = {
    "r.scheduled_for >= ?": "SEARCH r USING INDEX runs_scheduled_for (scheduled_for>?)",
    "r.schedule_id IN (SELECT id FROM schedules WHERE owner = ?)": (
        "SEARCH r USING INDEX runs_schedule (schedule_id=?)"
    ),
    "1 = 1": "SCAN r USING INDEX runs_duration",
}


def _plan(conn: sqlite3.Connection, sql: str) -> str:
    params = [None] * sql.count("?")
    return " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_each_statement_that_reads_the_indexes_of_finished_runs_states_their_condition(
    sqlite_url: str,
) -> None:
    open_store(sqlite_url).close()  # the schema, migrated
    named = statements("sqlite")
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        for name, want in _STATS_PLANS.items():
            plan = _plan(conn, named[name])
            assert want in plan, (name, plan)
            assert "MULTI-INDEX" not in plan, (name, plan)  # one walk of the index
        for where, want in _SCANNED_PLANS.items():
            plan = _plan(conn, fill(named["scanned_durations"], where=where))
            assert want in plan and "MULTI-INDEX" not in plan, (where, plan)


def test_a_list_of_runs_in_one_final_status_is_read_newest_first(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runs_final's condition (status = 'succeeded' OR ...) serves a query for one of
    its statuses too; the lists of runs, newest first, still walk runs_scheduled_for
    (sorting every succeeded run to show the newest 100 would cost more)."""
    ran: list[str] = []
    connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(ran.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    store = open_store(sqlite_url)
    try:
        for status in ("succeeded", "failed", "timed_out", "lost", "cancelled", "missed"):
            store.list_runs(status=status)  # type: ignore[arg-type]
            store.list_runs(status=status, task="t")  # type: ignore[arg-type]
    finally:
        store.close()
    monkeypatch.undo()
    lists = [sql for sql in ran if "ORDER BY r.scheduled_for DESC" in sql]
    assert len(lists) == 12, ran
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        for sql in lists:
            plan = _plan(conn, sql)
            assert plan.startswith("SCAN r USING INDEX runs_scheduled_for"), (sql, plan)
