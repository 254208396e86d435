"""``fire_and_claim``: the runs a fire makes due at once are claimed in the same
transaction, exactly as ``claim_runs`` would claim them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from tickwork.models import AttemptOutcome, FirePlan, LogRecord, RetryPolicy, Run, Schedule
from tickwork.store import Store
from tickwork.store.base import ClaimRequest, FireResult

from .conftest import T0, at, every_second, finish_one, make_run, make_schedule

LEASE = timedelta(seconds=30)


def fire_claim(
    store: Store,
    seconds: float,
    *,
    node: str = "n1",
    limit: int = 100,
    tasks: tuple[str, ...] = ("t",),
    task_limits: Mapping[str, int] | None = None,
    shares: Mapping[str, float] | None = None,
) -> FireResult:
    now = at(seconds)
    return store.fire_and_claim(
        now,
        every_second(),
        1000,
        ClaimRequest(node, now + LEASE, limit, tasks, task_limits or {}, shares or {}),
    )


def statuses(store: Store, runs: list[Run]) -> list[str]:
    return [store.get_run(r.id).status for r in runs]  # type: ignore[union-attr]


def test_due_runs_are_running_when_the_fire_commits(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    result = fire_claim(store, 0.5, node="n7")
    (fired,) = result.fired
    (run,) = result.claimed
    assert run.id == fired.id and result.more is False
    assert (run.status, run.attempt, run.node) == ("running", 1, "n7")
    assert run.lease_until == at(0.5) + LEASE and run.started_at == at(0.5)
    stored = store.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.attempt, stored.node, stored.lease_until) == (
        "running",
        1,
        "n7",
        at(0.5) + LEASE,
    )
    assert [(a.number, a.status, a.started_at, a.node) for a in stored.attempts] == [
        (1, "running", at(0.5), "n7")
    ]


def test_a_claimed_run_is_stored_as_the_fire_returned_it(store: Store) -> None:
    """Every column of a run claimed by its fire, as written and as read back."""
    store.add_schedule(
        make_schedule(
            "a", data={"k": [1, "x"]}, priority=7, timeout=12.5, retry=RetryPolicy(max_attempts=5)
        )
    )
    (run,) = fire_claim(store, 0.5, node="n7").claimed
    assert run.data == {"k": [1, "x"]} and (run.priority, run.timeout) == (7, 12.5)
    assert run.retry.max_attempts == 5 and run.trigger == "schedule"
    assert (run.scheduled_for, run.due_at, run.created_at) == (T0, T0, at(0.5))
    assert store.get_run(run.id) == run
    # It is held like any claimed run: a heartbeat keeps it, nobody else claims it.
    assert store.heartbeat("n7", at(1), at(40), [run.id]).lost == frozenset()
    assert store.claim_runs("n2", at(1), at(31), 10, ["t"], {}) == []


def test_a_run_claimed_in_the_fire_finishes_like_any_other(store: Store) -> None:
    store.add_schedule(make_schedule("a", result_queue="done"))
    (run,) = fire_claim(store, 0).claimed
    finished = finish_one(
        store, run.id, "n1", 1, AttemptOutcome(status="succeeded", result=7), at(1)
    )
    assert finished is not None and (finished.status, finished.result) == ("succeeded", 7)
    assert [m.payload["result"] for m in store.read_queue("done")] == [7]


def test_only_the_nodes_tasks_and_what_fits(store: Store) -> None:
    store.add_schedule(make_schedule("mine"))
    store.add_schedule(make_schedule("theirs", task="other"))
    for i in range(3):
        store.add_schedule(make_schedule(f"p{i}", priority=i))
    result = fire_claim(store, 0, limit=2)
    assert len(result.fired) == 5 and result.more is True
    # Highest priority first; the rest wait for claim_runs on any node.
    assert [r.schedule_id for r in result.claimed] == ["p2", "p1"]
    by_schedule = {r.schedule_id: r for r in result.fired}
    assert statuses(store, [by_schedule["theirs"], by_schedule["mine"], by_schedule["p0"]]) == [
        "pending",
        "pending",
        "pending",
    ]
    assert {r.schedule_id for r in store.claim_runs("n2", at(1), at(31), 10, ["t"], {})} == {
        "mine",
        "p0",
    }


def test_older_waiting_runs_go_first(store: Store) -> None:
    """With runs already waiting, the fire claims nothing: claim_runs ranks old and new."""
    old = make_run(None, at(-5), priority=0)
    store.insert_runs([old])
    store.add_schedule(make_schedule("a"))
    result = fire_claim(store, 0)
    assert result.claimed == [] and result.more is True
    got = store.claim_runs("n1", at(0), at(30), 1, ["t"], {})
    assert [r.id for r in got] == [old.id]


def test_runs_not_due_yet_stay_pending(store: Store) -> None:
    """A fired run delayed by jitter is not due when the fire commits: it waits."""
    store.add_schedule(make_schedule("a"))
    base = every_second()

    def jittered(schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        plan = base(schedule, active, now)
        late = tuple(replace(p, due_at=p.due_at + timedelta(seconds=5)) for p in plan.runs)
        return replace(plan, runs=late)

    now = at(0)
    result = store.fire_and_claim(
        now, jittered, 10, ClaimRequest("n1", now + LEASE, 10, ("t",), {})
    )
    (fired,) = result.fired
    assert result.claimed == [] and result.more is True
    assert statuses(store, [fired]) == ["pending"]
    assert [r.id for r in store.claim_runs("n1", at(5), at(35), 10, ["t"], {})] == [fired.id]


def test_overlap_limits_hold(store: Store) -> None:
    # A backlog of three fires each: catch-up is the planner's business, limits ours.
    store.add_schedule(make_schedule("allow2", overlap="allow", max_instances=2))
    store.add_schedule(make_schedule("skip1", overlap="skip", next_fire_at=T0))
    store.add_schedule(make_schedule("repl", overlap="replace"))
    result = fire_claim(store, 2)
    claimed = [r.schedule_id for r in result.claimed]
    assert claimed.count("allow2") == 2
    assert claimed.count("skip1") == 1
    assert claimed.count("repl") == 3
    assert result.more is True


def test_a_queue_starts_only_its_oldest_run(store: Store) -> None:
    s = store.add_schedule(make_schedule("q", overlap="queue"))
    result = fire_claim(store, 2)
    assert [r.scheduled_for for r in result.claimed] == [T0]
    # With an older run of the queue still waiting (not due), nothing new starts.
    s2 = store.add_schedule(make_schedule("q2", overlap="queue", next_fire_at=at(10)))
    store.insert_runs([make_run(s2, at(5), trigger="backfill", due_at=at(50))])
    assert fire_claim(store, 10).claimed == []
    assert s.id == "q"


def test_task_limits_count_running_runs_everywhere(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    (first,) = fire_claim(store, 0, task_limits={"t": 1}).claimed
    assert first.status == "running"
    store.add_schedule(make_schedule("b", next_fire_at=at(1)))
    result = fire_claim(store, 1, node="n2", task_limits={"t": 1})
    # a's next fire and b's: the task already runs once (on n1), so neither starts.
    assert result.claimed == [] and len(result.fired) == 2 and result.more is True


def test_a_share_leaves_peers_their_part(store: Store) -> None:
    for i in range(4):
        store.add_schedule(make_schedule(f"s{i}"))
    result = fire_claim(store, 0, shares={"t": 0.5})
    assert len(result.claimed) == 2 and result.more is True
    assert len(store.claim_runs("n2", at(0), at(30), 10, ["t"], {})) == 2


def test_a_share_is_per_task_and_a_task_no_peer_runs_is_taken_whole(store: Store) -> None:
    """A peer that runs only ``t`` gets its part of ``t``'s runs; ``u``, which only this
    node runs, is claimed whole (left behind, it would wait for this node alone)."""
    for i in range(4):
        store.add_schedule(make_schedule(f"t{i}"))
        store.add_schedule(make_schedule(f"u{i}", task="u"))
    result = fire_claim(store, 0, tasks=("t", "u"), shares={"t": 0.5})
    assert Counter(r.task for r in result.claimed) == {"t": 2, "u": 4}
    assert result.more is True
    assert [r.task for r in store.claim_runs("n2", at(0), at(30), 10, ["t"], {})] == ["t", "t"]


def test_a_fire_that_collides_claims_nothing_for_the_dropped_run(store: Store) -> None:
    s = store.add_schedule(make_schedule("a"))
    store.insert_runs([make_run(s, T0, trigger="backfill", due_at=at(100))])
    result = fire_claim(store, 0)
    assert result.fired == [] and result.claimed == []
    (only,) = store.list_runs(schedule_id="a")
    assert (only.trigger, only.status, only.attempts) == ("backfill", "pending", ())


# -- attempt ends in batches ------------------------------------------------------------


def test_a_batch_of_ends_is_guarded_per_attempt(store: Store) -> None:
    """finish_attempts writes each end as finish_attempt would: only where the node still
    holds that attempt, with logs, retries and queue messages, results in item order."""
    store.add_schedule(make_schedule("ok", result_queue="results"))
    store.add_schedule(make_schedule("bad", error_queue="errors"))
    store.add_schedule(make_schedule("again"))
    store.add_schedule(make_schedule("stale"))
    runs = {r.schedule_id: r for r in fire_claim(store, 0).claimed}
    assert len(runs) == 4
    log = LogRecord(at(0.5), "INFO", "task", "hello", attempt=1)
    items = [
        (runs["ok"].id, "n1", 1, AttemptOutcome(status="succeeded", result={"n": 1}, logs=(log,))),
        (runs["bad"].id, "n1", 1, AttemptOutcome(status="failed", error="boom")),
        (runs["again"].id, "n1", 1, AttemptOutcome(status="failed", error="x", retry_at=at(9))),
        (runs["stale"].id, "n2", 1, AttemptOutcome(status="succeeded")),  # not its node
        (runs["stale"].id, "n1", 2, AttemptOutcome(status="succeeded")),  # not its attempt
        (runs["ok"].id, "n1", 1, AttemptOutcome(status="failed")),  # already ended above
    ]
    ok, bad, again, wrong_node, wrong_attempt, twice = store.finish_attempts(items, at(1))
    assert wrong_node is None and wrong_attempt is None and twice is None
    assert ok is not None and (ok.status, ok.result, ok.finished_at) == (
        "succeeded",
        {"n": 1},
        at(1),
    )
    assert [(a.number, a.status, a.finished_at) for a in ok.attempts] == [(1, "succeeded", at(1))]
    assert [line.message for line in ok.logs] == ["hello"]
    assert bad is not None and (bad.status, bad.error) == ("failed", "boom")
    assert again is not None and (again.status, again.due_at, again.finished_at) == (
        "retrying",
        at(9),
        None,
    )
    # As stored, the same.
    for got in (ok, bad, again):
        stored = store.get_run(got.id)
        assert stored is not None
        assert (stored.status, stored.result, stored.error, stored.due_at) == (
            got.status,
            got.result,
            got.error,
            got.due_at,
        )
        assert stored.attempts == got.attempts
    stale = store.get_run(runs["stale"].id)
    assert stale is not None and stale.status == "running" and stale.attempts[0].status == "running"
    assert [m.payload["result"] for m in store.read_queue("results")] == [{"n": 1}]
    assert [m.payload["error"] for m in store.read_queue("errors")] == ["boom"]
    # The retry is claimable when due, as attempt 2.
    (retried,) = store.claim_runs("n1", at(9), at(39), 10, ["t"], {})
    assert (retried.id, retried.attempt) == (runs["again"].id, 2)


def test_ends_written_without_their_attempts_return_the_same_runs_otherwise(
    store: Store,
) -> None:
    """``attempts=False`` (what the engine's finisher asks): the runs come back as
    ``finish_attempts`` returns them but with no attempts, which are written as ever."""
    for sid in ("a", "b", "c"):
        store.add_schedule(make_schedule(sid, result_queue="results"))
    first, second, third = fire_claim(store, 0).claimed
    ok = AttemptOutcome(status="succeeded", result={"n": 1}, finished_at=at(0.5))
    retry = AttemptOutcome(status="failed", error="x", retry_at=at(9))
    one, two = store.finish_attempts(
        [(first.id, "n1", 1, ok), (second.id, "n1", 1, retry)], at(1), attempts=False
    )
    assert one is not None and two is not None
    assert (one.status, one.result, one.finished_at, one.attempts) == (
        "succeeded",
        {"n": 1},
        at(0.5),
        (),
    )
    assert (two.status, two.due_at, two.error, two.attempts) == ("retrying", at(9), "x", ())
    for got in (one, two):
        stored = store.get_run(got.id)
        assert stored is not None and stored.replace(attempts=()) == got
        assert [a.status for a in stored.attempts] == ["succeeded" if got is one else "failed"]
    assert [m.payload["result"] for m in store.read_queue("results")] == [{"n": 1}]
    written, claimed = store.finish_and_claim(
        [(third.id, "n1", 1, ok)], at(10), "n1", at(40), 5, ["t"], {}, attempts=False
    )
    assert written[0] is not None and written[0].attempts == ()
    # The claimed run (the retry) keeps its attempts: only the ends' are left out.
    assert [(r.id, [a.number for a in r.attempts]) for r in claimed] == [(second.id, [1, 2])]


def test_an_end_written_later_keeps_the_time_the_attempt_ended(store: Store) -> None:
    """Ends are written in batches, after the tasks ended: the run's finished_at (and so
    its duration in history and stats) is the attempt's own end, not the write's."""
    for sid in ("a", "b", "c"):
        store.add_schedule(make_schedule(sid))
    first, second, third = fire_claim(store, 0).claimed
    ended = AttemptOutcome(status="succeeded", finished_at=at(0.25))
    one, two = store.finish_attempts(
        [(first.id, "n1", 1, ended), (second.id, "n1", 1, AttemptOutcome(status="failed"))],
        at(5),
    )
    assert one is not None and two is not None
    assert (one.finished_at, one.duration) == (at(0.25), 0.25)
    assert two.finished_at == at(5)  # no end given: the write's time
    stored = store.get_run(first.id)
    assert stored is not None and stored.finished_at == at(0.25)
    assert [(a.status, a.finished_at) for a in stored.attempts] == [("succeeded", at(0.25))]
    late = finish_one(
        store, third.id, "n1", 1, AttemptOutcome(status="succeeded", finished_at=at(0.5)), at(9)
    )
    assert late is not None and late.finished_at == at(0.5)


def test_a_fire_prepared_ahead_commits_only_when_held_returns_true(store: Store) -> None:
    """``hold``: the fire is written as of ``now`` and committed once ``hold`` says so;
    False rolls it all back. A schedule with an unfinished run is left for the fire at
    the time itself (its run may end before then, and overlap must see that)."""
    store.add_schedule(make_schedule("a"))
    store.add_schedule(make_schedule("busy"))
    store.insert_runs(
        [make_run(store.get_schedule("busy"), at(-1), trigger="schedule", status="running")],
    )
    seen: list[int] = []

    def hold(answer: bool) -> Callable[[], bool]:
        def wait() -> bool:
            seen.append(len(store.list_runs(schedule_id="a", limit=10)))  # not yet visible
            return answer

        return wait

    now = at(0)
    claim = ClaimRequest("n1", now + LEASE, 100, ("t",), {})
    dropped = store.fire_and_claim(now, every_second(), 100, claim, hold=hold(False))
    assert (dropped.fired, dropped.claimed) == ([], [])
    assert store.list_runs(schedule_id="a", limit=10) == []
    a = store.get_schedule("a")
    assert a is not None and a.next_fire_at == T0
    result = store.fire_and_claim(now, every_second(), 100, claim, hold=hold(True))
    assert [r.schedule_id for r in result.claimed] == ["a"]
    assert seen == [0, 0]
    busy = store.get_schedule("busy")
    assert busy is not None and busy.next_fire_at == T0  # still due, for the fire at T


def test_fired_runs_copy_which_defaults_they_leave_to_the_node(store: Store) -> None:
    """Claimed or left waiting, a fired run records the schedule's ``node_defaults``."""
    store.add_schedule(make_schedule("a", node_defaults=("retry", "timeout")))
    store.add_schedule(make_schedule("b", node_defaults=("timeout",)))
    assert store.get_schedule("a").node_defaults == ("retry", "timeout")  # type: ignore[union-attr]
    result = fire_claim(store, 0.5, limit=1)  # one claimed, the other left pending
    assert len(result.claimed) == 1 and len(result.fired) == 2
    for run in result.fired:
        stored = store.get_run(run.id)
        assert stored is not None
        expected = ("retry", "timeout") if run.schedule_id == "a" else ("timeout",)
        assert run.node_defaults == stored.node_defaults == expected
    assert {store.get_run(r.id).status for r in result.fired} == {"running", "pending"}  # type: ignore[union-attr]
