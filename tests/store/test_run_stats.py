"""``run_stats``: the per-task figures and the runs per status counted once, equal to
``task_stats`` and ``count_runs`` asked apart, on SQLite and PostgreSQL."""

from __future__ import annotations

from tickwork.store import Store

from .test_task_stats import CLAIMED_AT, RUNS, at, build, close, expected


def test_run_stats_is_task_stats_and_count_runs(store: Store) -> None:
    made = build(store)
    for now in (CLAIMED_AT, at(10 * RUNS)):  # before and after the pending runs are due
        for since, owner in ((None, None), (at(RUNS // 2), None), (None, "alice")):
            tasks, runs = store.run_stats(now, since, owner)
            assert tasks == store.task_stats(since, owner)
            assert runs == store.count_runs(now, owner)
    tasks, runs = store.run_stats(CLAIMED_AT)
    close(tasks, expected(made))
    assert runs["skipped"] == sum(m.status == "skipped" for m in made)
    assert runs["backlog"] == 0
    assert store.run_stats(at(10 * RUNS))[1]["backlog"] == runs["pending"] > 0
