"""``Store.gauges``: what a metrics scrape reads, on SQLite and PostgreSQL; and the stuck
counts a node's heartbeat writes, that the gauges sum."""

from __future__ import annotations

import pytest

from tickwork.models import Node
from tickwork.store.base import Store

from .conftest import T0, at, make_schedule, old_node, open_at_version


def test_stuck_threads_are_summed_over_the_nodes_alive(store: Store) -> None:
    for node in ("n1", "n2", "n3"):
        store.register_node(Node(node, "h", 1, T0, T0))
    store.heartbeat("n1", at(10), at(40), [], stuck_threads=3)
    store.heartbeat("n2", at(10), at(40), [], stuck_threads=2)
    store.heartbeat("n3", at(10), at(40), [], stuck_threads=7)
    store.deregister_node("n3", at(11))  # stopped: its threads ended with its process
    gauges = store.gauges(at(12), alive_since=at(5))
    assert gauges.nodes == 2
    assert gauges.stuck_threads == 5
    # A node whose heartbeat lapsed is not alive: its count goes with it.
    gauges = store.gauges(at(60), alive_since=at(11))
    assert (gauges.nodes, gauges.stuck_threads) == (0, 0)


def test_stuck_coroutines_are_summed_over_the_nodes_alive(store: Store) -> None:
    for node in ("n1", "n2", "n3"):
        store.register_node(Node(node, "h", 1, T0, T0))
    store.heartbeat("n1", at(10), at(40), [], stuck_threads=1, stuck_coroutines=4)
    store.heartbeat("n2", at(10), at(40), [], stuck_coroutines=2)
    store.heartbeat("n3", at(10), at(40), [], stuck_coroutines=9)
    store.deregister_node("n3", at(11))  # stopped: its event loop ended with its process
    gauges = store.gauges(at(12), alive_since=at(5))
    assert (gauges.nodes, gauges.stuck_threads, gauges.stuck_coroutines) == (2, 1, 6)
    gauges = store.gauges(at(60), alive_since=at(11))
    assert (gauges.nodes, gauges.stuck_coroutines) == (0, 0)


def test_each_heartbeat_writes_both_stuck_counts(store: Store) -> None:
    """A beat sets the counts as of now, both at once; the nodes read them back."""
    store.register_node(Node("n1", "h", 1, T0, T0))
    store.heartbeat("n1", at(10), at(40), [], stuck_threads=3, stuck_coroutines=2)
    (node,) = store.list_nodes()
    assert (node.stuck_threads, node.stuck_coroutines) == (3, 2)
    store.heartbeat("n1", at(20), at(50), [], stuck_threads=3)  # the coroutines ended
    (node,) = store.list_nodes(include_stopped=True)
    assert (node.stuck_threads, node.stuck_coroutines) == (3, 0)


@pytest.mark.empty_database
def test_the_nodes_of_an_older_schema_have_no_stuck_coroutines_after_upgrade(db_url: str) -> None:
    """Migration 0016 adds the column to the rows already there, at 0."""
    old = open_at_version(db_url, 15)
    try:
        old_node(old)
        assert old.upgrade()[0] == 16  # and any migration after it
        (node,) = old.list_nodes()
        assert (node.id, node.stuck_threads, node.stuck_coroutines) == ("n1", 0, 0)
        old.heartbeat("n1", at(10), at(40), [], stuck_coroutines=1)
        assert [n.stuck_coroutines for n in old.list_nodes()] == [1]
    finally:
        old.close()


def test_the_oldest_fire_time_not_fired_of_an_active_schedule_is_its_age(store: Store) -> None:
    """Fires that no node made show as the age of the oldest one: paused and finished
    schedules, and fire times still ahead, do not count."""
    assert store.gauges(at(100), alive_since=at(70)).oldest_due_fire_age == 0
    store.add_schedule(make_schedule("late", next_fire_at=at(10)))
    store.add_schedule(make_schedule("later", next_fire_at=at(40)))
    store.add_schedule(make_schedule("ahead", next_fire_at=at(500)))
    store.add_schedule(make_schedule("paused", status="paused", paused=True, next_fire_at=at(1)))
    store.add_schedule(make_schedule("done", status="finished", next_fire_at=at(2)))
    assert store.gauges(at(100), alive_since=at(70)).oldest_due_fire_age == 90
    assert store.gauges(at(5), alive_since=at(0)).oldest_due_fire_age == 0


def test_overdue_fires_count_the_active_schedules_not_fired_by_then(store: Store) -> None:
    store.add_schedule(make_schedule("a", next_fire_at=at(0)))
    store.add_schedule(make_schedule("b", next_fire_at=at(30)))
    store.add_schedule(make_schedule("c", next_fire_at=at(90)))
    store.add_schedule(make_schedule("p", next_fire_at=at(-60), paused=True, status="paused"))
    assert store.overdue_fires(at(-1)) == (0, None)
    assert store.overdue_fires(at(0)) == (1, at(0))
    assert store.overdue_fires(at(60)) == (2, at(0))
    assert store.overdue_fires(at(600)) == (3, at(0))
