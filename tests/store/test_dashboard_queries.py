"""The dashboard's summaries on both databases: a page of schedules sorted and counted
in SQL, the ids a filter matches, counts per status, runs per time bucket, and the
newest runs of many schedules at once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.conftest import T0, at, make_run, make_schedule
from tickwork.errors import ValidationError
from tickwork.store import Store
from tickwork.store.records import ScheduleFilter


def seed(store: Store) -> None:
    for i, (name, task, owner, status) in enumerate(
        [
            ("Zeta", "a", "ann", "active"),
            ("alpha", "b", "ann", "paused"),
            ("", "a", "bob", "active"),  # no name: sorted by its id
            ("Mid", "c", "bob", "finished"),
        ]
    ):
        store.add_schedule(
            make_schedule(
                f"s{i}",
                task,
                name=name,
                owner=owner,
                status=status,
                paused=status == "paused",
                tags=("x",) if i % 2 else (),
                next_fire_at=at(100 - i * 10) if status == "active" else None,
                created_at=at(i),
            )
        )


def test_a_page_is_sorted_counted_and_cut_in_the_database(store: Store) -> None:
    seed(store)
    items, total = store.schedule_page(sort="name", limit=2)
    assert total == 4
    assert [s.id for s in items] == ["s1", "s3"]  # alpha, Mid (case-insensitive)
    items, _ = store.schedule_page(sort="name", offset=2, limit=2)
    assert [s.id for s in items] == ["s2", "s0"]  # "s2" (its id), Zeta
    items, _ = store.schedule_page(sort="name", descending=True, limit=1)
    assert [s.id for s in items] == ["s0"]
    items, _ = store.schedule_page(sort="next")
    assert [s.id for s in items][:2] == ["s2", "s0"]  # soonest first, none last
    items, total = store.schedule_page(ScheduleFilter(owner="bob"), sort="created", descending=True)
    assert [s.id for s in items] == ["s3", "s2"] and total == 2
    items, total = store.schedule_page(ScheduleFilter(q="ALP"))
    assert [s.id for s in items] == ["s1"] and total == 1
    items, total = store.schedule_page(ScheduleFilter(tag="x", task="b"))
    assert [s.id for s in items] == ["s1"] and total == 1


def test_ids_matching_and_counts(store: Store) -> None:
    seed(store)
    assert store.schedule_ids(ScheduleFilter(task="a")) == ["s0", "s2"]
    assert store.schedule_ids(ScheduleFilter(owner="ann", status="paused")) == ["s1"]
    assert store.count_schedules() == {"active": 2, "paused": 1, "finished": 1}
    assert store.count_schedules("bob") == {"active": 1, "paused": 0, "finished": 1}


def test_runs_per_bucket_and_status_with_durations(store: Store) -> None:
    seed(store)
    s0 = make_schedule("s0")
    s2 = make_schedule("s2")
    runs = [
        make_run(s0, at(10), status="succeeded", started_at=at(10), finished_at=at(12)),
        make_run(s0, at(20), status="succeeded", started_at=at(20), finished_at=at(26)),
        make_run(s0, at(3700), status="failed", started_at=at(3700), finished_at=at(3701)),
        make_run(s2, at(3710), status="skipped"),
        make_run(s2, at(-10), status="succeeded"),  # before the window
    ]
    store.insert_runs(runs)
    rows = store.run_activity(T0, 3600)
    assert sorted(rows) == [
        (0, "succeeded", 2, 4.0, 6.0),
        (1, "failed", 1, 1.0, 1.0),
        (1, "skipped", 1, None, None),
    ]
    assert sorted(store.run_activity(T0, 3600, owner="bob")) == [(1, "skipped", 1, None, None)]
    assert store.run_activity(T0 + timedelta(hours=5), 3600) == []


def test_newest_runs_of_many_schedules(store: Store) -> None:
    seed(store)
    s0, s2 = make_schedule("s0"), make_schedule("s2")
    store.insert_runs([make_run(s0, at(i), status="succeeded") for i in range(30)])
    store.insert_runs([make_run(s2, at(i), status="failed") for i in range(3)])
    found = store.recent_runs(["s0", "s2", "s1"], 20)
    assert [t for _, _, t in found["s0"]] == [at(i) for i in range(10, 30)]  # oldest first
    assert [st for _, st, _ in found["s2"]] == ["failed"] * 3
    assert found["s1"] == []
    mine = store.recent_runs(["s0", "s2"], 5, owner="ann")
    assert len(mine["s0"]) == 5 and mine["s2"] == []


def test_a_nul_in_a_filter_is_bad_input_not_a_failing_database(store: Store, db_url: str) -> None:
    """PostgreSQL cannot hold a NUL in text: that is the caller's bad value (a 4xx at the
    edges), not a StoreError (a 5xx)."""
    seed(store)
    if not db_url.startswith("postgresql"):
        return  # SQLite compares such text as it is
    for call in (
        lambda: store.list_runs(task="a\x00b"),
        lambda: store.schedule_page(ScheduleFilter(q="a\x00b")),
        lambda: store.schedule_ids(ScheduleFilter(tag="a\x00b")),
    ):
        with pytest.raises(ValidationError, match="NUL"):
            call()
