"""Schedules read ahead of their fire: a cache the fire checks against the stored
``revision`` in its own transaction, so that no write, by tickwork or anyone else,
leaves it firing an old copy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tickwork.models import Schedule
from tickwork.store import Store, open_store
from tickwork.store.sql import SqlStore

from .conftest import T0, at, by_hand, every_second, make_schedule


def sql_store(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def fire_data(store: Store, now_s: float = 0) -> dict[str, object]:
    """Fire what is due; each fired schedule's run data, by schedule id."""
    return {r.schedule_id: r.data for r in store.fire_due(at(now_s), every_second(), 100)}


def assert_cache_is_the_rows(store: SqlStore) -> None:
    """The invariant the cache lives by: an entry at the stored revision is the row."""
    for sid, (revision, cached, data_text, retry_text) in list(store._known.items()):
        stored = store.get_schedule(sid)
        assert stored is not None
        with store._read() as tx:
            ((stored_revision, stored_data, stored_retry),) = tx.execute(
                "SELECT revision, data, retry FROM schedules WHERE id = ?", (sid,)
            )
        if stored_revision == revision:
            assert cached == stored, sid
            assert (data_text, retry_text) == (stored_data, stored_retry), sid


@pytest.fixture
def other(db_url: str) -> Iterator[Store]:
    """A second store on the same database: another node, another process."""
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


def test_a_fire_takes_what_was_read_ahead(store: Store) -> None:
    lite = sql_store(store)
    for i in range(3):
        store.add_schedule(make_schedule(f"s{i}", data={"i": i}, priority=i))
    assert store.read_ahead(at(0), 100) == 3
    assert store.read_ahead(at(0), 100) == 0  # held as stored: nothing to read again
    runs = store.fire_due(at(0), every_second(), 100)
    assert {(r.schedule_id, r.data["i"], r.priority) for r in runs} == {
        (f"s{i}", i, i) for i in range(3)
    }
    assert (lite.cache_hits, lite.cache_misses) == (3, 0)


def test_a_schedule_changed_after_the_read_ahead_fires_as_changed(store: Store) -> None:
    """The update keeps ``updated_at`` (a frozen clock): only the revision tells."""
    lite = sql_store(store)
    store.add_schedule(make_schedule("a", data={"v": 1}))
    store.read_ahead(at(0), 100)
    store.update_schedule(make_schedule("a", data={"v": 2}))
    assert fire_data(store) == {"a": {"v": 2}}
    assert (lite.cache_hits, lite.cache_misses) == (0, 1)


def test_a_schedule_deleted_and_added_again_fires_as_added(store: Store) -> None:
    store.add_schedule(make_schedule("a", data={"v": 1}))
    store.read_ahead(at(0), 100)
    assert store.delete_schedule("a", T0) is not None
    store.add_schedule(make_schedule("a", data={"v": 2}))
    assert fire_data(store) == {"a": {"v": 2}}


def test_a_schedule_paused_after_the_read_ahead_does_not_fire(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    store.add_schedule(make_schedule("b"))
    store.read_ahead(at(0), 100)
    store.set_paused(["a"], True, T0, lambda s, now: s.next_fire_at)
    assert set(fire_data(store)) == {"b"}


def test_a_change_by_another_node_is_seen(store: Store, other: Store) -> None:
    store.add_schedule(make_schedule("a", data={"v": 1}))
    store.read_ahead(at(0), 100)
    other.update_schedule(make_schedule("a", data={"v": 2}))
    assert fire_data(store) == {"a": {"v": 2}}


def test_a_change_by_hand_in_sql_is_seen(store: Store, db_url: str) -> None:
    """An UPDATE or INSERT that does not know about ``revision`` (an operator, an older
    tickwork) still moves it: the database's triggers do."""
    store.add_schedule(make_schedule("a", data={"v": 1}))
    store.add_schedule(make_schedule("b", data={"v": 1}))
    store.read_ahead(at(0), 100)
    statements = [
        """UPDATE schedules SET data = '{"v": 2}' WHERE id = 'a'""",
        "DELETE FROM schedules WHERE id = 'b'",
        "INSERT INTO schedules (id, task, schedule, data, status, next_fire_at, anchor)"
        """ SELECT 'b', task, schedule, '{"v": 3}', status, next_fire_at, anchor"""
        " FROM schedules WHERE id = 'a'",
    ]
    by_hand(db_url, *statements)
    assert fire_data(store) == {"a": {"v": 2}, "b": {"v": 3}}


def test_a_repeating_schedule_fires_from_the_cache_as_stored(store: Store) -> None:
    """After each fire the cache holds the row as the fire left it, so the next fire
    of an interval schedule decodes nothing, and sees exactly what is stored."""
    lite = sql_store(store)
    store.add_schedule(make_schedule("a", data={"v": 1}, tags=("x",), priority=3))
    for second in range(4):
        runs = store.fire_due(at(second), every_second(), 100)
        assert [(r.scheduled_for, r.data, r.priority) for r in runs] == [(at(second), {"v": 1}, 3)]
        assert_cache_is_the_rows(lite)
    assert (lite.cache_hits, lite.cache_misses) == (3, 1)
    stored = store.get_schedule("a")
    assert stored is not None
    assert (stored.execution_count, stored.last_fire_at, stored.next_fire_at) == (4, at(3), at(4))


def test_a_finished_schedule_leaves_the_cache(store: Store) -> None:
    lite = sql_store(store)
    store.add_schedule(make_schedule("a", max_executions=1))

    def once(schedule: Schedule, active: object, now: object) -> object:
        plan = every_second()(schedule, (), at(0))
        return plan.__class__(plan.runs, None, plan.last_fire_at, 1, "finished")

    store.fire_due(at(0), once, 100)  # type: ignore[arg-type]
    assert "a" not in lite._known


def test_the_cache_is_bounded_and_the_rest_is_read_at_the_fire(store: Store) -> None:
    lite = sql_store(store)
    lite.schedule_cache_size = 2
    for i in range(5):
        store.add_schedule(make_schedule(f"s{i}", data={"i": i}))
    assert store.read_ahead(at(0), 100) == 2
    assert len(lite._known) == 2
    assert fire_data(store) == {f"s{i}": {"i": i} for i in range(5)}
    assert (lite.cache_hits, lite.cache_misses) == (2, 3)
    assert len(lite._known) <= 2


def test_read_ahead_reads_only_what_is_due_by_then(store: Store) -> None:
    store.add_schedule(make_schedule("soon", next_fire_at=at(1)))
    store.add_schedule(make_schedule("later", next_fire_at=at(60)))
    store.add_schedule(make_schedule("paused", next_fire_at=at(1), paused=True, status="paused"))
    assert store.read_ahead(at(2), 100) == 1
    assert set(sql_store(store)._known) == {"soon"}
    assert store.read_ahead(at(2), 0) == 0


def test_count_due_counts_active_schedules_due_by_then(store: Store) -> None:
    store.add_schedule(make_schedule("soon", next_fire_at=at(1)))
    store.add_schedule(make_schedule("now", next_fire_at=at(0)))
    store.add_schedule(make_schedule("later", next_fire_at=at(60)))
    store.add_schedule(make_schedule("paused", next_fire_at=at(1), paused=True, status="paused"))
    assert store.count_due(at(1), 100) == 2
    assert store.count_due(at(1), 1) == 1  # counting stops at the limit
    assert store.count_due(at(-1), 100) == 0
