"""A run's trace context (``trace_id``, the caller's ``parent_span_id`` and its
``trace_flags``): stored with the run, kept by every claim, retry and takeover of it,
on SQLite and PostgreSQL; and the runs stored before the columns existed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tickwork.models import AttemptOutcome, Run
from tickwork.store import Store
from tickwork.store.base import ClaimRequest

from .conftest import (
    T0,
    at,
    by_hand,
    every_second,
    finish_one,
    make_run,
    make_schedule,
    open_at_version,
    sql_instant,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
LEASE = timedelta(seconds=30)


def _claim(store: Store, seconds: float, node: str = "n1") -> list[Run]:
    now = at(seconds)
    return store.claim_runs(node, now, now + LEASE, 10, ["t"], {})


def test_the_callers_span_stays_with_the_run_through_retries_and_takeovers(
    store: Store,
) -> None:
    run = make_run(None, at(0), trace_id=TRACE, parent_span_id=SPAN, trace_flags=0)
    assert store.insert_runs([run]) == [run]
    (first,) = _claim(store, 0)
    assert (first.attempt, first.trace_id, first.parent_span_id) == (1, TRACE, SPAN)
    assert first.trace_flags == 0  # the caller did not sample: kept, not taken for None
    failed = AttemptOutcome("failed", error="boom", retry_at=at(1))
    retrying = finish_one(store, run.id, "n1", 1, failed, at(0.5))
    assert retrying is not None and retrying.status == "retrying"
    assert retrying.parent_span_id == SPAN
    (second,) = _claim(store, 1)
    assert (second.attempt, second.parent_span_id) == (2, SPAN)
    (lost,) = store.recover_lost(at(2), ["n1"], lambda r, now: now)  # its node died
    assert (lost.status, lost.parent_span_id) == ("retrying", SPAN)
    (third,) = _claim(store, 2, node="n2")
    assert (third.attempt, third.trace_id, third.parent_span_id) == (3, TRACE, SPAN)
    assert (retrying.trace_flags, second.trace_flags, third.trace_flags) == (0, 0, 0)
    stored = store.get_run(run.id)
    assert stored is not None and (stored.trace_id, stored.parent_span_id) == (TRACE, SPAN)
    assert [r.parent_span_id for r in store.list_runs()] == [SPAN]
    assert [r.trace_flags for r in store.list_runs()] == [0]


def test_runs_a_fire_makes_have_no_caller(store: Store) -> None:
    """Fired runs, claimed by their fire or left to wait, are nobody's trace."""
    store.add_schedule(make_schedule("a"))
    store.add_schedule(make_schedule("b", task="u"))  # no node here runs u: it waits
    result = store.fire_and_claim(
        at(0.5), every_second(), 1000, ClaimRequest("n1", at(0.5) + LEASE, 10, ("t",), {}, {})
    )
    assert {r.schedule_id for r in result.fired} == {"a", "b"}
    assert [r.schedule_id for r in result.claimed] == ["a"]
    for fired in result.fired:
        stored = store.get_run(fired.id)
        assert stored is not None
        assert (stored.trace_id, stored.parent_span_id, stored.trace_flags) == (None, None, None)


@pytest.mark.empty_database
def test_a_run_stored_before_the_column_keeps_its_trace_id_after_upgrade(
    db_url: str,
) -> None:
    """Migration 0017 adds ``parent_span_id`` to the runs already there, empty: a run
    triggered with a traceparent before it keeps its trace id, with no span id."""
    old = open_at_version(db_url, 16)
    try:
        t0 = sql_instant(db_url, T0)
        by_hand(
            db_url,
            "INSERT INTO runs (id, task, scheduled_for, trigger, due_at, created_at, trace_id)"
            f" VALUES ('old', 't', {t0}, 'manual', {t0}, {t0}, '{TRACE}')",
        )
        assert old.upgrade()[0] == 17
        stored = old.get_run("old")
        assert stored is not None and stored.scheduled_for == T0
        assert (stored.trace_id, stored.parent_span_id) == (TRACE, None)
        (claimed,) = _claim(old, 0)
        assert (claimed.id, claimed.trace_id, claimed.parent_span_id) == ("old", TRACE, None)
    finally:
        old.close()


@pytest.mark.empty_database
def test_a_run_stored_before_the_flags_column_counts_as_sampled_after_upgrade(
    db_url: str,
) -> None:
    """Migration 0019 adds ``trace_flags`` to the runs already there, empty: their
    attempts are traced as the caller's sampled ones, as they were."""
    old = open_at_version(db_url, 18)
    try:
        t0 = sql_instant(db_url, T0)
        by_hand(
            db_url,
            "INSERT INTO runs (id, task, scheduled_for, trigger, due_at, created_at, trace_id,"
            f" parent_span_id) VALUES ('old', 't', {t0}, 'manual', {t0}, {t0}, '{TRACE}',"
            f" '{SPAN}')",
        )
        assert old.upgrade()[0] == 19
        (claimed,) = _claim(old, 0)
        assert (claimed.id, claimed.parent_span_id, claimed.trace_flags) == ("old", SPAN, None)
    finally:
        old.close()
