"""A running attempt's log lines on both databases: shown with the run while it runs,
superseded by the attempt's final lines (never twice), deleted once the end is written,
kept for an attempt lost with its node, and deleted with the run."""

from __future__ import annotations

from datetime import timedelta

from tickwork.models import AttemptOutcome, LogRecord, Run
from tickwork.store import Store

from .conftest import T0, at, finish_one, make_run


def line(n: int, attempt: int = 1) -> LogRecord:
    return LogRecord(at(n), "INFO", "tickwork.task.t", f"line {n}", attempt)


def running(store: Store) -> Run:
    store.insert_runs([make_run(None, T0)])
    (run,) = store.claim_runs("n1", at(0), at(30), 1, ["t"], {})
    return run


def messages(store: Store, run_id: str) -> list[tuple[int, str]]:
    found = store.get_run(run_id)
    assert found is not None
    return [(r.attempt, r.message) for r in found.logs]


def test_live_lines_show_while_running_and_give_way_to_the_final_ones(store: Store) -> None:
    run = running(store)
    other = running(store)
    assert store.write_live_logs([(run.id, line(1)), (other.id, line(9))]) == set()
    assert store.write_live_logs([(run.id, line(2))]) == set()
    assert messages(store, run.id) == [(1, "line 1"), (1, "line 2")]
    got = store.get_run(run.id)
    assert got is not None and got.logs[0].at == at(1) and got.logs[0].at.tzinfo is not None
    # An end not written yet: the lines stay, and the attempt is not settled.
    assert store.write_live_logs([], [(run.id, 1)]) == set()
    assert messages(store, run.id) == [(1, "line 1"), (1, "line 2")]
    final = (line(1), line(2), line(3))
    outcome = AttemptOutcome("succeeded", logs=final)
    assert finish_one(store, run.id, "n1", 1, outcome, at(4)) is not None
    # Superseded at once (no line twice), then deleted; the other run's lines stay.
    assert messages(store, run.id) == [(1, "line 1"), (1, "line 2"), (1, "line 3")]
    assert store.write_live_logs([], [(run.id, 1)]) == {(run.id, 1)}
    assert messages(store, run.id) == [(1, "line 1"), (1, "line 2"), (1, "line 3")]
    assert messages(store, other.id) == [(1, "line 9")]


def test_a_lost_attempt_keeps_its_partial_lines_next_to_the_retry(store: Store) -> None:
    run = running(store)
    store.write_live_logs([(run.id, line(1)), (run.id, line(2))])
    (lost,) = store.recover_lost(at(31), ["n1"], lambda r, now: now)
    assert lost.status == "retrying"
    assert messages(store, run.id) == [(1, "line 1"), (1, "line 2")]
    (again,) = store.claim_runs("n2", at(32), at(60), 1, ["t"], {})
    assert again.attempt == 2
    store.write_live_logs([(run.id, line(33, attempt=2))])
    assert messages(store, run.id) == [(1, "line 1"), (1, "line 2"), (2, "line 33")]
    outcome = AttemptOutcome("succeeded", logs=(line(33, 2), line(34, 2)))
    assert finish_one(store, run.id, "n2", 2, outcome, at(35)) is not None
    # The lost attempt's lines are all it has: settled, but not deleted.
    assert store.write_live_logs([], [(run.id, 1), (run.id, 2)]) == {(run.id, 1), (run.id, 2)}
    assert messages(store, run.id) == [
        (1, "line 1"),
        (1, "line 2"),
        (2, "line 33"),
        (2, "line 34"),
    ]


def test_deleting_old_runs_deletes_their_live_lines(store: Store) -> None:
    run = running(store)
    store.write_live_logs([(run.id, line(1))])
    store.recover_lost(at(31), ["n1"], lambda r, now: None)
    assert store.delete_runs_before(at(31) + timedelta(days=1)) == 1
    assert store.get_run(run.id) is None
    # A run stored again under that id finds none of the deleted run's lines.
    store.insert_runs([make_run(None, T0).replace(id=run.id)])
    assert messages(store, run.id) == []
