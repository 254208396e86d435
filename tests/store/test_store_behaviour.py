"""The store's behaviour, the same on SQLite and PostgreSQL (each test runs on both).

Instants are passed in (``T0`` + seconds); the database is real, never mocked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest

from tickwork.errors import ConflictError, NotFoundError, ValidationError
from tickwork.models import (
    AttemptOutcome,
    FirePlan,
    LogRecord,
    Node,
    PlannedRun,
    RetryPolicy,
    Run,
    Schedule,
    TaskSpec,
)
from tickwork.store import Store, open_store
from tickwork.store.base import FirePlanner
from tickwork.store.sql import load_migrations

from .conftest import (
    T0,
    at,
    by_hand,
    every_second,
    finish_one,
    fire_all,
    make_run,
    make_schedule,
    new_id,
)

LATEST = load_migrations("sqlite")[-1][0]
assert load_migrations("postgres")[-1][0] == LATEST, "the dialects' migrations diverge"

LEASE = timedelta(seconds=30)


def claim(
    store: Store,
    now: datetime,
    limit: int = 100,
    *,
    node: str = "n1",
    tasks: Sequence[str] = ("t",),
    task_limits: dict[str, int] | None = None,
) -> list[Run]:
    return store.claim_runs(node, now, now + LEASE, limit, tasks, task_limits or {})


def succeed(store: Store, run: Run, now: datetime, result: object = None) -> Run | None:
    assert run.node is not None
    return finish_one(
        store, run.id, run.node, run.attempt, AttemptOutcome("succeeded", result=result), now
    )


def fixed_plan(*times: datetime, status: str = "pending") -> FirePlanner:
    """A planner that plans the same fire times every call and never advances."""

    def plan(schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        runs = tuple(
            PlannedRun(id=new_id(), scheduled_for=t, due_at=t, status=status)  # type: ignore[arg-type]
            for t in times
        )
        return FirePlan(
            runs, schedule.next_fire_at, times[-1], schedule.execution_count + 1, "active"
        )

    return plan


# -- migrations -------------------------------------------------------------------------


@pytest.mark.empty_database
def test_open_builds_the_schema_and_upgrade_is_idempotent(db_url: str) -> None:
    first = open_store(db_url)
    try:
        assert first.schema_version() == LATEST
        assert first.upgrade() == []
        second = open_store(db_url)  # opening again applies nothing
        try:
            assert second.upgrade() == []
            assert second.schema_version() == LATEST
        finally:
            second.close()
        # Every table answers.
        assert first.list_schedules() == []
        assert first.list_runs() == []
        assert first.list_nodes(include_stopped=True) == []
        assert first.read_queue("q", consume=False) == []
        assert first.known_tasks() == set()
        assert first.next_wakeup() is None
    finally:
        first.close()
        first.close()  # idempotent


# -- schedules --------------------------------------------------------------------------


def test_schedule_round_trips_every_field(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    s = Schedule(
        id="daily",
        task="reports:daily",
        schedule="0 2 * * *",
        name="Daily report",
        description="the report, daily",
        timezone="Europe/Paris",
        data={"region": "eu", "n": [1, 2.5, None, True], "nested": {"é": "ü"}},
        start_at=datetime(2026, 1, 1, 3, tzinfo=paris),
        end_at=datetime(2027, 1, 1, tzinfo=paris),
        jitter=2.5,
        overlap="allow",
        catchup="all",
        catchup_spread=30.0,
        misfire_grace=12.0,
        max_instances=3,
        max_executions=10,
        retry=RetryPolicy(max_attempts=5, delay=1.0, backoff=3.0, max_delay=60.0, jitter=False),
        timeout=42.0,
        priority=7,
        result_queue="results",
        error_queue="errors",
        tags=("a", "b"),
        metadata={"team": "x"},
        owner="alice",
        next_fire_at=datetime(2026, 1, 2, 2, 0, 0, 123456, tzinfo=paris),
        last_fire_at=at(-10),
        execution_count=4,
        created_at=at(-100),
        updated_at=at(-50),
        anchor=at(-100),
    )
    returned = store.add_schedule(s)
    got = store.get_schedule("daily")
    assert got == s == returned
    assert got is not None and got.next_fire_at is not None
    assert got.next_fire_at.utcoffset() == timedelta(0)
    assert got.next_fire_at.microsecond == 123456
    assert store.get_schedule("nope") is None


def test_duplicate_schedule_id_is_a_conflict(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    with pytest.raises(ConflictError, match="'a' already exists"):
        store.add_schedule(make_schedule("a", task="other"))
    assert store.get_schedule("a") == make_schedule("a")


def test_non_json_data_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.add_schedule(make_schedule("a", data={"when": T0}))
    assert store.get_schedule("a") is None


def test_update_replaces_fields_but_keeps_what_the_fire_loop_maintains(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    fire_all(store, at(2))  # 3 fires: execution_count 3, last_fire_at at(2)
    stale = make_schedule("a", schedule="5m", name="renamed", priority=3, next_fire_at=at(300))
    updated = store.update_schedule(stale.replace(updated_at=at(5)))
    assert updated.schedule == "5m" and updated.name == "renamed" and updated.priority == 3
    assert updated.next_fire_at == at(300) and updated.updated_at == at(5)
    assert updated.execution_count == 3 and updated.last_fire_at == at(2)
    assert updated.created_at == T0
    assert store.get_schedule("a") == updated
    with pytest.raises(NotFoundError):
        store.update_schedule(make_schedule("missing"))


def test_list_schedules_filters_and_pages(store: Store) -> None:
    for i in range(10):
        store.add_schedule(
            make_schedule(
                f"s{i:02d}",
                task="even" if i % 2 == 0 else "odd",
                tags=("x",) if i < 3 else ("y", "z"),
                owner="alice" if i < 5 else None,
            )
        )
    store.set_paused(["s09"], True, T0, lambda s, now: now)
    assert [s.id for s in store.list_schedules()] == [f"s{i:02d}" for i in range(10)]
    assert [s.id for s in store.list_schedules(task="odd")] == ["s01", "s03", "s05", "s07", "s09"]
    assert [s.id for s in store.list_schedules(tag="x")] == ["s00", "s01", "s02"]
    assert len(store.list_schedules(tag="z")) == 7
    assert store.list_schedules(tag="nope") == []
    assert [s.id for s in store.list_schedules(owner="alice", task="even")] == ["s00", "s02", "s04"]
    assert [s.id for s in store.list_schedules(status="paused")] == ["s09"]
    assert len(store.list_schedules(status="active")) == 9
    page1 = store.list_schedules(limit=4)
    page2 = store.list_schedules(limit=4, after_id=page1[-1].id)
    page3 = store.list_schedules(limit=4, after_id=page2[-1].id)
    assert [s.id for s in page1 + page2 + page3] == [f"s{i:02d}" for i in range(10)]
    assert len(page3) == 2


def test_delete_schedule_cancels_waiting_runs_and_keeps_history(store: Store) -> None:
    s = store.add_schedule(make_schedule("a", overlap="allow", max_instances=5))
    fire_all(store, at(3))  # runs at 0, 1, 2, 3
    first, second = claim(store, at(3), limit=2)
    succeed(store, first, at(4))
    cancelled = store.delete_schedule("a", at(5))
    assert cancelled is not None  # the waiting runs it cancelled, as they now are
    assert sorted((r.scheduled_for, r.status) for r in cancelled) == [
        (at(2), "cancelled"),
        (at(3), "cancelled"),
    ]
    assert store.get_schedule("a") is None
    by_time = {r.scheduled_for: r for r in store.list_runs(schedule_id=s.id)}
    assert by_time[at(0)].status == "succeeded"  # history stays
    assert by_time[at(1)].status == "running" and by_time[at(1)].cancel_requested
    for t in (at(2), at(3)):
        assert by_time[t].status == "cancelled" and by_time[t].finished_at == at(5)
    assert store.claim_runs("n1", at(9), at(99), 10, ["t"], {}) == []
    beat = store.heartbeat("n1", at(6), at(36), [second.id])
    assert beat.cancel_requested == {second.id}
    assert store.delete_schedule("a", at(6)) is None


def test_pause_and_resume(store: Store) -> None:
    for sid in ("a", "b", "c"):
        store.add_schedule(make_schedule(sid))
    store.add_schedule(make_schedule("done", status="finished", next_fire_at=None))
    paused = store.set_paused(["a"], True, at(1), lambda s, now: None)
    assert [(s.id, s.status, s.paused, s.paused_at) for s in paused] == [
        ("a", "paused", True, at(1))
    ]
    assert store.set_paused(["a"], True, at(2), lambda s, now: None) == []  # no change
    # Paused schedules do not fire; the others do.
    fired = fire_all(store, at(10))
    assert {r.schedule_id for r in fired} == {"b", "c"}
    # Pause all: the rest (the finished one stays finished).
    changed = store.set_paused(None, True, at(20), lambda s, now: None)
    assert {s.id: s.status for s in changed} == {"b": "paused", "c": "paused", "done": "finished"}
    # Resume all: next fire from now, through the callable; time paused not caught up.
    seen: list[tuple[str, datetime]] = []

    def next_fire(s: Schedule, now: datetime) -> datetime:
        seen.append((s.id, now))
        assert s.status == "active" and not s.paused
        return now + timedelta(seconds=1)

    resumed = store.set_paused(None, False, at(100), next_fire)
    assert {s.id: (s.status, s.next_fire_at) for s in resumed} == {
        "a": ("active", at(101)),
        "b": ("active", at(101)),
        "c": ("active", at(101)),
        "done": ("finished", None),
    }
    assert sorted(seen) == [("a", at(100)), ("b", at(100)), ("c", at(100))]
    assert store.get_schedule("a") == resumed[0]
    assert store.set_paused([], False, at(100), next_fire) == []


def test_resume_picks_up_a_schedule_the_fire_loop_paused(store: Store) -> None:
    store.add_schedule(make_schedule("a"))

    def stop(s: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        return FirePlan((), None, s.last_fire_at, s.execution_count, "paused")

    store.fire_due(at(0), stop, 10)
    (resumed,) = store.set_paused(None, False, at(5), lambda s, now: now)
    assert (resumed.status, resumed.paused, resumed.next_fire_at) == ("active", False, at(5))


# -- firing -----------------------------------------------------------------------------


def test_a_row_that_cannot_be_read_is_paused_and_the_others_fire(
    store: Store, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A schedule row edited by hand into something tickwork cannot decode (tags that
    are not a list) must not hold up the fires of every other schedule: it is paused,
    with an error naming it, and fires again once fixed and resumed."""
    for sid in ("a", "bad", "c"):
        store.add_schedule(make_schedule(sid))
    by_hand(db_url, "UPDATE schedules SET tags = '5' WHERE id = 'bad'")
    assert sorted(r.schedule_id for r in fire_all(store, at(0))) == ["a", "c"]
    assert "schedule bad cannot be read" in caplog.text
    by_hand(db_url, "UPDATE schedules SET tags = '[]' WHERE id = 'bad'")
    bad = store.get_schedule("bad")
    assert bad is not None and bad.status == "paused"
    store.set_paused(["bad"], False, at(0.5), lambda s, now: at(1))
    assert sorted(r.schedule_id for r in fire_all(store, at(1))) == ["a", "bad", "c"]


def test_fire_due_inserts_runs_and_advances_the_schedule(store: Store) -> None:
    store.add_schedule(
        make_schedule(
            "a", data={"x": 1}, priority=4, timeout=9.0, retry=RetryPolicy(max_attempts=7)
        )
    )
    assert store.next_wakeup() == T0
    assert store.fire_due(at(-1), every_second(), 10) == []  # not due yet
    fired = store.fire_due(at(2), every_second(), 10)
    assert [r.scheduled_for for r in fired] == [at(0), at(1), at(2)]
    for r in fired:
        assert (r.schedule_id, r.task, r.status, r.trigger, r.attempt) == (
            "a",
            "t",
            "pending",
            "schedule",
            0,
        )
        assert r.data == {"x": 1} and r.priority == 4 and r.timeout == 9.0
        assert r.retry.max_attempts == 7 and r.due_at == r.scheduled_for
    s = store.get_schedule("a")
    assert s is not None
    assert (s.next_fire_at, s.last_fire_at, s.execution_count) == (at(3), at(2), 3)
    stored = sorted(store.list_runs(schedule_id="a"), key=lambda r: r.scheduled_for)
    assert [r.id for r in stored] == [r.id for r in fired]
    assert stored[0] == fired[0]
    assert store.next_wakeup() == at(0)  # the oldest pending run


def test_a_second_fire_of_the_same_time_inserts_nothing(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    plan = fixed_plan(at(0), at(1))
    assert len(store.fire_due(at(5), plan, 10)) == 2
    assert store.fire_due(at(5), plan, 10) == []  # unique (schedule_id, scheduled_for)
    assert len(store.list_runs(schedule_id="a")) == 2
    # Backfill runs collide too; manual runs never do.
    s = store.get_schedule("a")
    backfill = make_run(s, at(1), trigger="backfill")
    manual = [make_run(s, at(1), trigger="manual") for _ in range(2)]
    inserted = store.insert_runs([backfill, *manual])
    assert {r.id for r in inserted} == {m.id for m in manual}
    assert len(store.list_runs(schedule_id="a")) == 4


def test_fire_due_honours_limit_and_order(store: Store) -> None:
    for i, sid in enumerate(["late", "early", "middle", "future"]):
        store.add_schedule(make_schedule(sid, next_fire_at=at({0: 3, 1: 1, 2: 2, 3: 50}[i])))
    calls: list[str] = []

    def plan(s: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        calls.append(s.id)
        fp = every_second()(s, active, now)
        return fp

    store.fire_due(at(10), plan, 2)
    assert calls == ["early", "middle"]
    store.fire_due(at(10), plan, 10)
    assert calls == ["early", "middle", "late"]


def test_skipped_and_missed_fires_are_recorded_not_run(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    store.add_schedule(make_schedule("b"))

    def plan(s: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        status = "skipped" if s.id == "a" else "missed"
        return FirePlan(
            (PlannedRun(new_id(), T0, T0, status=status, error=f"{status}: why"),),  # type: ignore[arg-type]
            at(1),
            T0,
            1,
            "active",
        )

    fired = store.fire_due(at(0), plan, 10)
    assert sorted((r.schedule_id, r.status, r.error) for r in fired) == [
        ("a", "skipped", "skipped: why"),
        ("b", "missed", "missed: why"),
    ]
    for r in fired:
        assert r.finished_at == at(0) and r.done
        got = store.get_run(r.id)
        assert got is not None and got.status == r.status and got.finished_at == at(0)
    assert claim(store, at(5)) == []
    assert store.next_wakeup() == at(1)


def test_planner_sees_unfinished_runs_and_can_finish_the_schedule(store: Store) -> None:
    store.add_schedule(make_schedule("a", overlap="allow", max_instances=9))
    fire_all(store, at(2))
    running = claim(store, at(2), limit=1)[0]
    succeed(store, claim(store, at(2), limit=1)[0], at(2))
    seen: list[list[tuple[str, str]]] = []

    def plan(s: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        seen.append([(r.id, r.status) for r in active])
        return FirePlan((), None, s.last_fire_at, s.execution_count, "finished")

    assert store.fire_due(at(3), plan, 10) == []
    pending = [r for r in store.list_runs(schedule_id="a") if r.status == "pending"]
    assert sorted(seen[0]) == sorted([(running.id, "running"), (pending[0].id, "pending")])
    s = store.get_schedule("a")
    assert s is not None and s.status == "finished" and s.next_fire_at is None
    assert store.fire_due(at(100), plan, 10) == [] and len(seen) == 1


def test_fire_plan_cancels_replaced_runs(store: Store) -> None:
    store.add_schedule(make_schedule("a", overlap="replace"))
    fire_all(store, at(1))
    running = claim(store, at(1), limit=1)[0]
    waiting = next(r for r in store.list_runs(schedule_id="a") if r.status == "pending")

    def plan(s: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        fp = every_second()(s, active, now)
        return FirePlan(
            fp.runs,
            fp.next_fire_at,
            fp.last_fire_at,
            fp.execution_count,
            "active",
            cancel_run_ids=tuple(r.id for r in active),
        )

    store.fire_due(at(2), plan, 10)
    got_running, got_waiting = store.get_run(running.id), store.get_run(waiting.id)
    assert (
        got_running is not None and got_running.status == "running" and got_running.cancel_requested
    )
    assert got_waiting is not None and got_waiting.status == "cancelled"
    assert got_waiting.finished_at == at(2)


# -- claiming ---------------------------------------------------------------------------


def test_claim_sets_the_lease_and_adds_an_attempt(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    (fired,) = fire_all(store, at(0))
    (run,) = claim(store, at(1), node="n7")
    assert run.id == fired.id
    assert (run.status, run.attempt, run.node) == ("running", 1, "n7")
    assert run.lease_until == at(1) + LEASE and run.started_at == at(1)
    assert [(a.number, a.status, a.started_at, a.node) for a in run.attempts] == [
        (1, "running", at(1), "n7")
    ]
    assert store.get_run(run.id) == run
    assert claim(store, at(1)) == []


def test_claim_order_priority_then_due_time_and_limit(store: Store) -> None:
    runs = [
        make_run(None, at(3), priority=0),
        make_run(None, at(1), priority=0),
        make_run(None, at(2), priority=5),
        make_run(None, at(0), priority=-1),
        make_run(None, at(9), priority=9),  # not due at 5
    ]
    store.insert_runs(runs)
    got = claim(store, at(5), limit=3)
    assert [r.id for r in got] == [runs[2].id, runs[1].id, runs[0].id]
    assert [r.id for r in claim(store, at(5))] == [runs[3].id]
    assert [r.id for r in claim(store, at(9))] == [runs[4].id]


def test_claim_only_tasks_the_node_has(store: Store) -> None:
    store.insert_runs([make_run(None, T0, task="other"), make_run(None, T0, task="t")])
    assert [r.task for r in claim(store, at(1), tasks=["t", "x"])] == ["t"]
    assert claim(store, at(1), tasks=[]) == []
    assert [r.task for r in claim(store, at(1), tasks=["other"])] == ["other"]


def _waiting(store: Store, sid: str, n: int, **fields: object) -> list[Run]:
    s = store.add_schedule(make_schedule(sid, **fields))  # type: ignore[arg-type]
    runs = [make_run(s, at(i), trigger="schedule") for i in range(n)]
    store.insert_runs(runs)
    return runs


def test_allow_overlap_runs_up_to_max_instances(store: Store) -> None:
    runs = _waiting(store, "a", 5, overlap="allow", max_instances=2)
    got = claim(store, at(10))
    assert [r.id for r in got] == [runs[0].id, runs[1].id]
    assert claim(store, at(10), node="n2") == []
    succeed(store, got[0], at(11))
    assert [r.id for r in claim(store, at(11), node="n2")] == [runs[2].id]


@pytest.mark.parametrize("overlap", ["skip", "buffer_one"])
def test_one_at_a_time_overlaps(store: Store, overlap: str) -> None:
    runs = _waiting(store, "a", 3, overlap=overlap, max_instances=5)
    assert [r.id for r in claim(store, at(10))] == [runs[0].id]
    assert claim(store, at(10)) == []


def test_queue_runs_one_at_a_time_in_order(store: Store) -> None:
    runs = _waiting(store, "a", 3, overlap="queue")
    (first,) = claim(store, at(10))
    assert first.id == runs[0].id
    assert claim(store, at(10)) == []
    # The first fails and retries later: the next in line must wait for it, in order.
    retry_at = at(60)
    assert finish_one(
        store, first.id, "n1", 1, AttemptOutcome("failed", error="boom", retry_at=retry_at), at(11)
    )
    assert claim(store, at(20)) == []
    (again,) = claim(store, at(60))
    assert again.id == runs[0].id and again.attempt == 2
    succeed(store, again, at(61))
    assert [r.id for r in claim(store, at(61))] == [runs[1].id]


def test_runs_of_full_schedules_do_not_take_the_places(store: Store) -> None:
    """The best-ranked waiting runs belong to a schedule that may run one at a time: the
    claim still fills its places with the runs after them."""
    busy = _waiting(store, "busy", 5, overlap="allow", max_instances=1, priority=9)
    rest = _waiting(store, "rest", 5, overlap="replace")
    got = claim(store, at(10), limit=3)
    assert [r.id for r in got] == [busy[0].id, rest[0].id, rest[1].id]


def test_replace_overlap_is_not_limited(store: Store) -> None:
    runs = _waiting(store, "a", 4, overlap="replace")
    assert len(claim(store, at(10))) == 4
    assert {r.id for r in runs} == {r.id for r in store.list_runs(status="running")}


def test_task_limits_count_over_all_nodes_and_schedules(store: Store) -> None:
    _waiting(store, "a", 3, overlap="replace")
    _waiting(store, "b", 3, overlap="replace", task="u", priority=-1)
    limits = {"t": 2}
    got = claim(store, at(10), limit=3, tasks=["t", "u"], task_limits=limits)
    # The third slot goes to "u": a full task does not waste the claim.
    assert sorted(r.task for r in got) == ["t", "t", "u"]
    more = claim(store, at(10), node="n2", tasks=["t", "u"], task_limits=limits)
    assert sorted(r.task for r in more) == ["u", "u"]
    running_t = [r for r in got if r.task == "t"]
    succeed(store, running_t[0], at(11))
    assert [r.task for r in claim(store, at(11), node="n2", tasks=["t"], task_limits=limits)] == [
        "t"
    ]
    assert claim(store, at(11), tasks=["t"], task_limits=limits) == []
    assert len(claim(store, at(11), tasks=["t"], task_limits={})) == 0  # none left


# -- leases, attempts, recovery -----------------------------------------------------------


def test_heartbeat_renews_leases_and_reports_lost_and_cancelled(store: Store) -> None:
    store.register_node(Node("n1", "h", 1, T0, T0))
    store.insert_runs([make_run(None, T0) for _ in range(3)])
    a, b, c = claim(store, at(1))
    store.cancel_run(b.id, at(2))
    succeed(store, c, at(2))
    beat = store.heartbeat("n1", at(10), at(40), [a.id, b.id, c.id, "ghost"])
    assert beat.lost == {c.id, "ghost"}
    assert beat.cancel_requested == {b.id}
    got = store.get_run(a.id)
    assert got is not None and got.lease_until == at(40)
    (node,) = store.list_nodes()
    assert node.heartbeat_at == at(10) and node.running == 2
    # Another node's heartbeat does not hold our runs.
    assert store.heartbeat("n2", at(11), at(41), [a.id]).lost == {a.id}


def test_finish_attempt_is_guarded_by_node_and_attempt(store: Store) -> None:
    store.insert_runs([make_run(None, T0)])
    (run,) = claim(store, at(1))
    outcome = AttemptOutcome(
        "succeeded", result=1, logs=(LogRecord(at(1), "INFO", "x", "should not be kept"),)
    )
    assert finish_one(store, run.id, "other-node", 1, outcome, at(2)) is None
    assert finish_one(store, run.id, "n1", 2, outcome, at(2)) is None
    assert finish_one(store, "nope", "n1", 1, outcome, at(2)) is None
    got = store.get_run(run.id)
    assert got is not None and got.status == "running" and got.logs == ()
    done = finish_one(store, run.id, "n1", 1, outcome, at(3))
    assert done is not None and done.status == "succeeded" and done.result == 1
    assert finish_one(store, run.id, "n1", 1, outcome, at(4)) is None  # only once


def test_retry_flow_then_success_with_logs(store: Store) -> None:
    s = store.add_schedule(make_schedule("a", result_queue="results", error_queue="errors"))
    fire_all(store, at(0))
    (run,) = claim(store, at(0))
    logs1 = (
        LogRecord(at(0.5), "INFO", "task", "starting"),
        LogRecord(at(0.6), "ERROR", "task", "boom"),
    )
    retrying = finish_one(
        store,
        run.id,
        "n1",
        1,
        AttemptOutcome(
            "failed", error="ValueError: boom", traceback="Traceback...", logs=logs1, retry_at=at(5)
        ),
        at(1),
    )
    assert retrying is not None
    assert (retrying.status, retrying.due_at, retrying.finished_at, retrying.error) == (
        "retrying",
        at(5),
        None,
        "ValueError: boom",
    )
    assert [(a.number, a.status, a.finished_at, a.error) for a in retrying.attempts] == [
        (1, "failed", at(1), "ValueError: boom")
    ]
    assert store.read_queue("errors") == []  # not final: nothing queued
    assert store.count_runs(at(4))["backlog"] == 0
    assert store.count_runs(at(5))["backlog"] == 1
    assert claim(store, at(4)) == []
    (again,) = claim(store, at(5), node="n2")
    assert (again.id, again.attempt, again.node, again.started_at) == (run.id, 2, "n2", at(0))
    assert [(a.number, a.status) for a in again.attempts] == [(1, "failed"), (2, "running")]
    logs2 = (LogRecord(at(5.5), "INFO", "task", "fine now", attempt=2),)
    done = finish_one(
        store, run.id, "n2", 2, AttemptOutcome("succeeded", result={"ok": True}, logs=logs2), at(6)
    )
    assert done is not None and done.status == "succeeded" and done.finished_at == at(6)
    assert done.error is None and done.duration == 6.0
    assert [(a.number, a.status) for a in done.attempts] == [(1, "failed"), (2, "succeeded")]
    got = store.get_run(run.id)
    assert got is not None
    assert [(log.message, log.attempt, log.at) for log in got.logs] == [
        ("starting", 1, at(0.5)),
        ("boom", 1, at(0.6)),
        ("fine now", 2, at(5.5)),
    ]
    assert got.result == {"ok": True} and got.traceback is None
    (message,) = store.read_queue("results")
    assert message.kind == "result" and message.run_id == run.id and message.schedule_id == s.id
    assert message.payload["result"] == {"ok": True}
    assert message.payload["scheduled_for"] == T0.isoformat()
    assert {"run_id", "schedule_id", "task", "scheduled_for", "result"} <= set(message.payload)


def test_final_failure_goes_to_the_error_queue(store: Store) -> None:
    store.add_schedule(
        make_schedule("a", overlap="replace", result_queue="results", error_queue="errors")
    )
    fire_all(store, at(1))
    first, second = claim(store, at(1))
    finish_one(store, first.id, "n1", 1, AttemptOutcome("failed", error="bad"), at(2))
    finish_one(store, second.id, "n1", 1, AttemptOutcome("timed_out", error="slow"), at(2))
    messages = store.read_queue("errors", consume=False)
    assert [(m.kind, m.run_id, m.payload["error"], m.payload["status"]) for m in messages] == [
        ("error", first.id, "bad", "failed"),
        ("error", second.id, "slow", "timed_out"),
    ]
    assert store.read_queue("results") == []


def test_queue_payload_is_the_same_on_every_database(store: Store) -> None:
    t = T0 + timedelta(seconds=1, microseconds=2500)
    store.add_schedule(make_schedule("a", next_fire_at=t, result_queue="q", error_queue="e"))
    store.fire_due(t, every_second(), 10)
    (run,) = claim(store, t)
    finish_one(store, run.id, "n1", 1, AttemptOutcome("succeeded", result=[1, "é"]), at(2))
    (message,) = store.read_queue("q")
    assert message.payload == {
        "run_id": run.id,
        "schedule_id": "a",
        "task": "t",
        "scheduled_for": "2026-01-01T00:00:01.002500+00:00",
        "status": "succeeded",
        "attempt": 1,
        "result": [1, "é"],
    }
    assert message.created_at == at(2) and message.queue == "q"


def test_queue_consume_semantics(store: Store) -> None:
    store.add_schedule(make_schedule("a", overlap="replace", result_queue="q"))
    fire_all(store, at(4))
    for i, run in enumerate(claim(store, at(4))):
        succeed(store, run, at(5), result=i)
    peek = store.read_queue("q", consume=False)
    assert len(peek) == 5 and [m.id for m in peek] == sorted(m.id for m in peek)
    assert store.read_queue("q", consume=False, limit=2) == peek[:2]
    taken = store.read_queue("q", limit=2)
    assert taken == peek[:2]
    assert store.read_queue("q") == peek[2:]
    assert store.read_queue("q") == []
    assert store.read_queue("other") == []


def test_recover_lost_retries_or_loses_runs(store: Store) -> None:
    store.add_schedule(make_schedule("a", overlap="replace", error_queue="errors"))
    fire_all(store, at(3))  # four runs
    lapsed = store.claim_runs("n1", at(3), at(10), 1, ["t"], {})[0]
    dead = store.claim_runs("n2", at(3), at(100), 1, ["t"], {})[0]
    alive = store.claim_runs("n3", at(3), at(100), 1, ["t"], {})[0]
    final = store.claim_runs("n1", at(3), at(10), 1, ["t"], {})[0]
    calls: list[tuple[str, str | None]] = []

    def retry(run: Run, now: datetime) -> datetime | None:
        calls.append((run.id, run.schedule_id))
        return None if run.id == final.id else now + timedelta(seconds=7)

    assert store.recover_lost(at(10), [], retry) == []  # lease_until < now, strictly
    recovered = {r.id: r for r in store.recover_lost(at(11), ["n2"], retry)}
    assert set(recovered) == {lapsed.id, dead.id, final.id}
    assert sorted(calls) == sorted([(lapsed.id, "a"), (dead.id, "a"), (final.id, "a")])
    for rid in (lapsed.id, dead.id):
        r = recovered[rid]
        assert (r.status, r.due_at, r.node, r.lease_until) == ("retrying", at(18), r.node, None)
        assert [(a.number, a.status, a.finished_at) for a in r.attempts] == [(1, "lost", at(11))]
    assert "died" in (recovered[dead.id].error or "")
    assert "lease" in (recovered[lapsed.id].error or "")
    lost = recovered[final.id]
    assert lost.status == "lost" and lost.finished_at == at(11)
    (message,) = store.read_queue("errors")
    assert message.run_id == final.id and message.payload["status"] == "lost"
    still = store.get_run(alive.id)
    assert still is not None and still.status == "running"
    # The node that lost its run cannot finish it any more, and learns it at heartbeat.
    assert succeed(store, lapsed.replace(node="n1"), at(12)) is None
    assert store.heartbeat("n1", at(12), at(40), [lapsed.id]).lost == {lapsed.id}
    # Re-claimed: attempt 2 with the lost attempt kept.
    again = {r.id: r for r in claim(store, at(18), node="n4")}
    assert set(again) == {lapsed.id, dead.id}
    assert [(a.number, a.status) for a in again[dead.id].attempts] == [(1, "lost"), (2, "running")]


def test_recover_lost_cancels_runs_whose_cancel_was_requested(store: Store) -> None:
    store.insert_runs([make_run(None, T0)])
    (run,) = store.claim_runs("n1", at(0), at(5), 1, ["t"], {})
    store.cancel_run(run.id, at(1))
    (r,) = store.recover_lost(at(6), [], lambda run, now: now)
    assert r.status == "cancelled" and r.finished_at == at(6)


# -- cancel, get, list --------------------------------------------------------------------


def test_cancel_run_pending_running_finished(store: Store) -> None:
    store.insert_runs([make_run(None, T0) for _ in range(3)])
    a, b, c = sorted(store.list_runs(), key=lambda r: r.id)
    (running,) = [r for r in claim(store, at(1), limit=1)]
    pending = next(r for r in (a, b, c) if r.id != running.id)
    cancelled = store.cancel_run(pending.id, at(2))
    assert cancelled.status == "cancelled" and cancelled.finished_at == at(2)
    asked = store.cancel_run(running.id, at(2))
    assert asked.status == "running" and asked.cancel_requested
    assert store.cancel_run(running.id, at(3)).cancel_requested  # asking twice is fine
    done = finish_one(
        store, running.id, "n1", 1, AttemptOutcome("cancelled", error="cancelled"), at(4)
    )
    assert done is not None and done.status == "cancelled"
    with pytest.raises(ConflictError, match="already over"):
        store.cancel_run(running.id, at(5))
    with pytest.raises(ConflictError):
        store.cancel_run(pending.id, at(5))
    with pytest.raises(NotFoundError):
        store.cancel_run("nope", at(5))


def test_list_runs_filters_order_and_paging(store: Store) -> None:
    sa = store.add_schedule(make_schedule("a", overlap="replace"))
    sb = store.add_schedule(make_schedule("b", task="u"))
    store.insert_runs([make_run(sa, at(i), trigger="schedule") for i in range(6)])
    store.insert_runs([make_run(sb, at(i + 0.5), trigger="schedule") for i in range(3)])
    claim(store, at(10), tasks=["t"])  # a's six runs are running
    everything = store.list_runs()
    times = [r.scheduled_for for r in everything]
    assert times == sorted(times, reverse=True) and len(everything) == 9
    assert {r.schedule_id for r in store.list_runs(schedule_id="a")} == {"a"}
    assert len(store.list_runs(task="u")) == 3
    assert len(store.list_runs(status="running")) == 6
    assert len(store.list_runs(status=["running", "pending"])) == 9
    assert [r.scheduled_for for r in store.list_runs(since=at(2), until=at(4))] == [
        at(3),
        at(2.5),
        at(2),
    ]
    page1 = store.list_runs(limit=4)
    page2 = store.list_runs(limit=4, before_id=page1[-1].id)
    page3 = store.list_runs(limit=4, before_id=page2[-1].id)
    assert [r.id for r in page1 + page2 + page3] == [r.id for r in everything]
    assert all(r.logs == () for r in everything)
    assert all(len(r.attempts) == 1 for r in everything if r.status == "running")
    with pytest.raises(ValidationError):
        store.list_runs(status="bogus")  # type: ignore[arg-type]


def test_manual_runs_without_schedule(store: Store) -> None:
    run = make_run(None, at(1), task="t", data={"k": "v"}, trace_id="trace-1")
    (inserted,) = store.insert_runs([run])
    assert inserted == run
    got = store.get_run(run.id)
    assert got is not None and got.schedule_id is None and got.data == {"k": "v"}
    assert got.trace_id == "trace-1"
    assert store.insert_runs([]) == []


# -- stats, maintenance, nodes ----------------------------------------------------------


def test_count_runs_and_backlog(store: Store) -> None:
    store.insert_runs([make_run(None, at(i)) for i in range(5)])
    claim(store, at(1), limit=1)
    counts = store.count_runs(at(2))
    assert counts["pending"] == 4 and counts["running"] == 1 and counts["succeeded"] == 0
    assert counts["backlog"] == 2  # due by at(2): the runs at 1 and 2 (0 is running)
    assert store.count_runs(at(100))["backlog"] == 4


def test_task_stats_percentiles(store: Store) -> None:
    runs = [make_run(None, at(0), task="t") for _ in range(10)] + [make_run(None, at(0), task="u")]
    store.insert_runs(runs)
    claimed = claim(store, at(0), tasks=["t", "u"])
    for i, run in enumerate(r for r in claimed if r.task == "t"):
        status = "succeeded" if i < 8 else "failed" if i == 8 else "timed_out"
        finish_one(store, run.id, "n1", 1, AttemptOutcome(status), at(i + 1))  # type: ignore[arg-type]
    stats = {s.task: s for s in store.task_stats()}
    t = stats["t"]
    # Each status counted under its own word, as history --status filters them.
    assert (t.runs, t.succeeded, t.failed, t.timed_out, t.lost) == (10, 8, 1, 1, 0)
    assert t.p50_duration == pytest.approx(5.5)
    assert t.p95_duration == pytest.approx(9.55)
    assert t.success_rate == 0.8
    u = stats["u"]
    assert (u.runs, u.succeeded, u.failed, u.p50_duration) == (1, 0, 0, None)
    assert store.task_stats(since=at(1)) == []


def test_delete_runs_before(store: Store) -> None:
    store.add_schedule(make_schedule("a", overlap="replace"))
    fire_all(store, at(3))
    runs = claim(store, at(3))
    for i, run in enumerate(runs):
        finish_one(
            store,
            run.id,
            "n1",
            1,
            AttemptOutcome("succeeded", logs=(LogRecord(at(i), "INFO", "x", "m"),)),
            at(10 * i),
        )
    fire_all(store, at(4))  # one pending, unfinished
    assert store.delete_runs_before(at(15)) == 2  # finished at 0 and 10
    left = store.list_runs(schedule_id="a")
    assert sorted(r.finished_at or at(999) for r in left) == [at(20), at(30), at(999)]
    assert store.get_run(runs[0].id) is None
    assert store.delete_runs_before(at(15)) == 0


def test_nodes_register_list_deregister_and_known_tasks(store: Store) -> None:
    store.register_node(Node("n1", "host1", 11, T0, T0, tasks=("t", "u")))
    store.register_node(Node("n2", "host2", 22, T0, at(5), tasks=("v",)))
    assert store.known_tasks() == {"t", "u", "v"}
    store.insert_runs([make_run(None, T0)])
    claim(store, at(1), node="n1")
    assert store.try_lead("n2", at(1), at(31))
    nodes = {n.id: n for n in store.list_nodes()}
    assert (nodes["n1"].running, nodes["n1"].is_leader, nodes["n1"].tasks) == (1, False, ("t", "u"))
    assert (nodes["n2"].running, nodes["n2"].is_leader, nodes["n2"].heartbeat_at) == (
        0,
        True,
        at(5),
    )
    store.deregister_node("n2", at(6))
    assert [n.id for n in store.list_nodes()] == ["n1"]
    (stopped,) = [n for n in store.list_nodes(include_stopped=True) if n.id == "n2"]
    assert stopped.stopped_at == at(6) and not stopped.is_leader
    assert store.known_tasks() == {"t", "u", "v"}  # published names outlive their node
    # Deregistering hands its running runs to recovery at once.
    store.deregister_node("n1", at(7))
    (recovered,) = store.recover_lost(at(7) + timedelta(microseconds=1), [], lambda r, now: now)
    assert recovered.status == "retrying"
    # Registering again (a restart) revives the node.
    store.register_node(Node("n2", "host2", 23, at(8), at(8), tasks=("v",)))
    assert {n.id for n in store.list_nodes()} == {"n2"}


def test_leadership_is_exclusive_and_expires(store: Store) -> None:
    assert store.try_lead("a", at(0), at(30))
    assert not store.try_lead("b", at(10), at(40))
    assert store.try_lead("a", at(20), at(50))  # renewal
    assert not store.try_lead("b", at(50), at(80))  # lease_until is inclusive
    assert store.try_lead("b", at(51), at(81))  # lapsed: taken over
    assert not store.try_lead("a", at(52), at(82))
    store.release_lead("a")  # not held: nothing happens
    assert not store.try_lead("a", at(53), at(83))
    store.release_lead("b")
    assert store.try_lead("a", at(54), at(84))


def test_try_lead_fails_closed(db_url: str) -> None:
    s = open_store(db_url)
    s.close()
    assert s.try_lead("a", at(0), at(30)) is False


def test_fresh_and_stopped_nodes_are_never_dead(store: Store) -> None:
    store.register_node(Node("fresh", "elsewhere", 2, T0, at(50)))
    store.register_node(Node("gone", "elsewhere", 3, T0, at(0)))
    store.deregister_node("gone", at(1))
    assert store.dead_nodes(at(60), timedelta(seconds=30)) == []
    assert store.dead_nodes(at(60), 30.0) == []


def test_recovering_a_dead_node_marks_it_stopped_until_it_beats_again(store: Store) -> None:
    store.register_node(Node("n1", "elsewhere", 1, T0, T0))
    store.insert_runs([make_run(None, T0)])
    claim(store, at(1), node="n1")
    (run,) = store.recover_lost(at(2), ["n1"], lambda r, now: now)
    assert run.status == "retrying"
    assert store.list_nodes() == []
    (gone,) = store.list_nodes(include_stopped=True)
    assert gone.stopped_at == at(2)
    assert store.dead_nodes(at(100), 1) == []  # stopped: not reported again
    store.heartbeat("n1", at(3), at(33), [run.id])  # it was alive after all
    assert [n.id for n in store.list_nodes()] == ["n1"]


def test_a_stopped_leader_is_replaced_at_once(store: Store) -> None:
    store.register_node(Node("a", "elsewhere", 1, T0, T0))
    assert store.try_lead("a", at(0), at(30))
    assert not store.try_lead("b", at(1), at(31))
    store.recover_lost(at(2), ["a"], lambda r, now: now)  # taken for dead
    assert store.try_lead("b", at(2), at(32))
    assert not store.try_lead("a", at(3), at(33))


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="naive"):
        store.add_schedule(make_schedule("a", next_fire_at=datetime(2026, 1, 1)))


def test_task_specs_are_published_and_the_newest_wins(store: Store) -> None:
    node = Node(id="n1", host="h", pid=1, started_at=T0, heartbeat_at=T0, tasks=("t", "u"))
    spec = TaskSpec(name="t", arguments=("a", "b"), required=("a",), timeout=7.0, retries=2)
    store.register_node(node, [spec])
    assert store.task_spec("t") == spec
    assert store.task_spec("u") is None  # published without a spec
    assert store.task_spec("nope") is None
    newer = TaskSpec(name="t", arguments=("a",), required=("a",))
    store.register_node(
        Node(id="n2", host="h", pid=2, started_at=T0, heartbeat_at=T0, tasks=("t",)), [newer]
    )
    assert store.task_spec("t") == newer
    # a node that publishes the name without a spec keeps the last spec
    store.register_node(
        Node(id="n3", host="h", pid=3, started_at=T0, heartbeat_at=T0, tasks=("t",))
    )
    assert store.task_spec("t") == newer
