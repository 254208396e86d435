"""Schedules per status over every schedule, from two indexes: equal to a plain count
on SQLite and PostgreSQL, and (SQLite's plan) never a read of the schedules' rows."""

from __future__ import annotations

import sqlite3
from collections import Counter

from tickwork.store import Store, open_store
from tickwork.store.sql_stats import _SCHEDULE_COUNTS

from .conftest import make_schedule

STATUSES = ["active"] * 7 + ["paused"] * 3 + ["finished"] * 2


def fill(store: Store) -> None:
    for i, status in enumerate(STATUSES):
        store.add_schedule(
            make_schedule(f"s{i}", status=status, paused=status == "paused", owner="alice")
        )


def test_schedule_counts_match_a_plain_count(store: Store) -> None:
    assert store.count_schedules() == {"active": 0, "paused": 0, "finished": 0}
    fill(store)
    assert store.count_schedules() == dict(Counter(STATUSES))
    assert store.count_schedules("alice") == dict(Counter(STATUSES))  # read as before
    store.add_schedule(make_schedule("new"))
    assert store.count_schedules()["active"] == Counter(STATUSES)["active"] + 1


def test_schedule_counts_read_indexes_only(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        fill(store)
    finally:
        store.close()
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        plan = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {_SCHEDULE_COUNTS}")]
    finally:
        conn.close()
    scans = [step for step in plan if step.startswith("SCAN")]
    assert len(scans) == 2, plan
    assert all("USING COVERING INDEX" in step for step in scans), plan
    assert any("schedules_inactive" in step for step in scans), plan
