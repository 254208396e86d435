"""``finish_and_claim``: a batch of attempt ends and the claim of the slots they free in
one transaction, on SQLite and PostgreSQL; and claims that read the waiting runs in
claim order instead of sorting them all."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from tickwork.models import AttemptOutcome, RetryPolicy
from tickwork.store import Store, open_store
from tickwork.store.attempt_ends import BRIEF_FIELDS
from tickwork.store.base import FinishItem
from tickwork.store.dialect import statements

from .conftest import at, make_run, make_schedule

LEASE = timedelta(seconds=30)


def _succeeded(seconds: float) -> AttemptOutcome:
    return AttemptOutcome("succeeded", result={"n": 1}, finished_at=at(seconds))


def _running_and_waiting(store: Store, running: int, waiting: int) -> list[FinishItem]:
    """``running`` runs claimed by node n1 (their ends, as items) and ``waiting`` more
    due, each of its own schedule."""
    for i in range(running + waiting):
        schedule = make_schedule(f"s{i}")
        store.add_schedule(schedule)
        store.insert_runs([make_run(schedule, at(0))])
    claimed = store.claim_runs("n1", at(1), at(1) + LEASE, running, ["t"], {})
    assert len(claimed) == running
    return [(run.id, "n1", run.attempt, _succeeded(2)) for run in claimed]


def test_ends_are_written_and_their_slots_refilled_in_one_call(store: Store) -> None:
    items = _running_and_waiting(store, 3, 5)
    written, claimed = store.finish_and_claim(items, at(2), "n1", at(2) + LEASE, 3, ["t"], {})
    assert [r.status if r else None for r in written] == ["succeeded"] * 3
    assert [r.result for r in written if r] == [{"n": 1}] * 3
    assert len(claimed) == 3 and {r.status for r in claimed} == {"running"}
    assert {r.id for r in claimed}.isdisjoint(item[0] for item in items)
    for run in claimed:
        stored = store.get_run(run.id)
        assert stored == run
        assert [(a.number, a.status, a.node) for a in stored.attempts] == [(1, "running", "n1")]
    # Two runs still wait: the next claim takes them, and only them.
    assert len(store.claim_runs("n2", at(3), at(3) + LEASE, 10, ["t"], {})) == 2


def test_the_claim_takes_runs_in_claim_order_and_keeps_earlier_attempts(store: Store) -> None:
    """Priority first, then due time; a run retried keeps its earlier attempts."""
    items = _running_and_waiting(store, 1, 1)
    high = make_schedule("high", priority=5)
    store.add_schedule(high)
    store.insert_runs([make_run(high, at(0.5))])
    retried = make_schedule("retried", retry=RetryPolicy(max_attempts=3), priority=9)
    store.add_schedule(retried)
    (first,) = store.insert_runs([make_run(retried, at(0))])
    (taken,) = store.claim_runs("n9", at(1), at(1) + LEASE, 1, ["t"], {})
    assert taken.id == first.id  # the highest priority
    failed = AttemptOutcome("failed", error="boom", retry_at=at(1.5), finished_at=at(1.2))
    assert store.finish_attempts([(taken.id, "n9", 1, failed)], at(1.2))[0] is not None
    written, claimed = store.finish_and_claim(items, at(2), "n1", at(2) + LEASE, 3, ["t"], {})
    assert written[0] is not None
    assert [(r.id == first.id, r.priority) for r in claimed] == [(True, 9), (False, 5), (False, 0)]
    again = claimed[0]
    assert [(a.number, a.status) for a in again.attempts] == [(1, "failed"), (2, "running")]
    assert store.get_run(again.id) == again


def test_nothing_is_written_when_the_claim_fails(store: Store) -> None:
    """One transaction: an end is not stored when the claim made with it fails."""
    items = _running_and_waiting(store, 2, 2)
    with pytest.raises(TypeError):
        # A task limit the claim cannot compare with a count fails inside the claim.
        store.finish_and_claim(
            items,
            at(2),
            "n1",
            at(2) + LEASE,
            2,
            ["t"],
            {"t": "not a number"},  # type: ignore[dict-item]
        )
    for run_id, *_ in items:
        stored = store.get_run(run_id)
        assert stored is not None and stored.status == "running"
    assert len(store.claim_runs("n2", at(3), at(3) + LEASE, 10, ["t"], {})) == 2


def test_ends_of_runs_no_longer_held_are_not_written_and_no_claim_needs_them(
    store: Store,
) -> None:
    items = _running_and_waiting(store, 1, 1)
    run_id, _, attempt, outcome = items[0]
    written, claimed = store.finish_and_claim(
        [(run_id, "other-node", attempt, outcome)], at(2), "n1", at(2) + LEASE, 1, ["t"], {}
    )
    assert written == [None] and len(claimed) == 1
    assert store.get_run(run_id).status == "running"  # type: ignore[union-attr]


def test_a_claim_reads_waiting_runs_in_claim_order_without_sorting_them(
    sqlite_url: str,
) -> None:
    """SQLite walks an index in claim order and stops at the limit: a claim costs the
    runs it takes, not every run waiting (10,000 in a burst at the default
    concurrency). PostgreSQL's planner chooses by its statistics."""
    open_store(sqlite_url).close()  # migrated
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + statements("")["claim_candidates"], (0, '["t"]', 50)
        ).fetchall()
    details = " | ".join(row[3] for row in plan)
    assert "runs_claim_order" in details
    assert "TEMP B-TREE FOR ORDER BY" not in details


def test_brief_ends_carry_the_fields_the_end_wrote_and_write_as_ever(store: Store) -> None:
    """``brief=True`` (what the engine's finisher asks): each result has the run's
    identity and what its end wrote, its other fields at their defaults; the ends,
    their attempts and their queue messages are written as without it."""
    results = make_schedule("r", result_queue="results", data={"k": 1})
    errors = make_schedule("e", error_queue="errors")
    plain = make_schedule("p")
    for schedule in (results, errors, plain):
        store.add_schedule(schedule)
    store.insert_runs(
        [
            make_run(results, at(0)),
            make_run(errors, at(0)),
            make_run(plain, at(0)),
            make_run(None, at(0)),  # no schedule
            make_run(plain, at(0.5)),
        ]
    )
    claimed = store.claim_runs("n1", at(1), at(1) + LEASE, 4, ["t"], {})
    by_schedule = {run.schedule_id: run for run in claimed}
    ok = AttemptOutcome("succeeded", result={"n": 1}, finished_at=at(1.5))
    failed = AttemptOutcome("failed", error="boom", traceback="tb", finished_at=at(1.25))
    retry = AttemptOutcome("failed", error="again", retry_at=at(9))
    items: list[FinishItem] = [
        (by_schedule["r"].id, "n1", 1, ok),
        (by_schedule["e"].id, "n1", 1, failed),
        (by_schedule["p"].id, "n1", 1, retry),
        (by_schedule[None].id, "n1", 1, ok),
        (by_schedule["r"].id, "n1", 1, failed),  # named twice: the first counts
        (by_schedule["e"].id, "n2", 1, ok),  # not this node's
    ]
    written, again = store.finish_and_claim(
        items, at(2), "n1", at(2) + LEASE, 5, ["t"], {}, brief=True
    )
    assert [r.status if r else None for r in written] == [
        "succeeded",
        "failed",
        "retrying",
        "succeeded",
        None,
        None,
    ]
    for got in written[:4]:
        assert got is not None
        stored = store.get_run(got.id)
        assert stored is not None
        for name in BRIEF_FIELDS:
            if name != "retry":  # one shared default policy (see BRIEF_FIELDS)
                assert getattr(got, name) == getattr(stored, name), name
        assert (got.result, got.data, got.attempts, got.logs) == (None, {}, (), ())
        assert [a.status for a in stored.attempts] == [got.status.replace("retrying", "failed")]
    assert written[1] is not None and written[1].duration == 0.25
    assert written[2] is not None and written[2].due_at == at(9)
    assert store.get_run(by_schedule["r"].id).result == {"n": 1}  # type: ignore[union-attr]
    assert [m.payload["result"] for m in store.read_queue("results")] == [{"n": 1}]
    assert [(m.payload["run_id"], m.payload["error"]) for m in store.read_queue("errors")] == [
        (by_schedule["e"].id, "boom")
    ]
    # The run waiting since 0.5 is claimed in the same trip (the retry is due at 9).
    assert [r.scheduled_for for r in again] == [at(0.5)]
    # finish_attempts takes it too; without queues on the schedules, none is written.
    (last,) = store.finish_attempts([(again[0].id, "n1", 1, ok)], at(3), brief=True)
    assert last is not None and (last.status, last.finished_at) == ("succeeded", at(1.5))
    assert store.read_queue("results") == []  # read above; nothing new
