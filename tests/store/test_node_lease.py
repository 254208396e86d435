"""Each node is judged alive by its own ``lease_ttl``, stored with it when it registers:
by ``dead_nodes`` (the takeover of its runs), by the gauges (``tickwork_nodes``) and by
whoever reads the listing (``Node.alive_at``), on SQLite and PostgreSQL. A node of an
older schema, registered without one, falls back to the reader's lease."""

from __future__ import annotations

import pytest

from tickwork.models import DEFAULT_LEASE_TTL, Node
from tickwork.store.base import Store
from tickwork.store.sql import SqlStore

from .conftest import T0, at, old_node, open_at_version


def _nodes(store: Store) -> None:
    """Three nodes that beat last at T0, with leases of 5 s and 120 s and one without,
    as processes elsewhere left their rows: judged by their heartbeat alone (no lock of
    theirs that this process could see, on either database)."""
    assert isinstance(store, SqlStore)
    with store._write() as tx:
        tx.executemany(
            "INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, tasks, lease_ttl)"
            " VALUES (?, 'elsewhere', 1, ?, ?, '[]', ?)",
            [
                (nid, store._ts(T0), store._ts(T0), ttl)
                for nid, ttl in (("short", 5.0), ("long", 120.0), ("unknown", None))
            ],
        )


def test_a_node_keeps_the_lease_it_registered_with(store: Store) -> None:
    store.register_node(Node("short", "h", 1, T0, T0, lease_ttl=5.0))
    store.register_node(Node("long", "h", 2, T0, T0, lease_ttl=120.0))
    store.register_node(Node("unknown", "h", 3, T0, T0))
    leases = {n.id: n.lease_ttl for n in store.list_nodes()}
    assert leases == {"short": 5.0, "long": 120.0, "unknown": None}
    # Registered again (a restart under its id) with another lease: the new one holds.
    store.register_node(Node("short", "h", 4, at(1), at(1), lease_ttl=7.5))
    assert {n.id: n.lease_ttl for n in store.list_nodes()}["short"] == 7.5


def test_dead_nodes_judge_each_node_by_its_own_lease(store: Store) -> None:
    """A peer whose own lease is 30 s must neither take over the runs of a node with a
    120 s lease after 31 s of silence, nor wait 30 s for one with a 5 s lease."""
    _nodes(store)
    assert store.dead_nodes(at(4), 30) == []
    assert store.dead_nodes(at(6), 30) == ["short"]
    assert store.dead_nodes(at(31), 30) == ["short", "unknown"]  # unknown: the fallback
    assert store.dead_nodes(at(31), 60) == ["short"]
    assert store.dead_nodes(at(121), 30) == ["long", "short", "unknown"]
    store.heartbeat("short", at(121), at(126), [])
    assert store.dead_nodes(at(125), 30) == ["long", "unknown"]


def test_the_nodes_gauge_counts_each_node_within_its_own_lease(store: Store) -> None:
    _nodes(store)
    assert store.gauges(at(4), alive_since=at(4 - DEFAULT_LEASE_TTL)).nodes == 3
    assert store.gauges(at(6), alive_since=at(6 - DEFAULT_LEASE_TTL)).nodes == 2
    assert store.gauges(at(31), alive_since=at(31 - DEFAULT_LEASE_TTL)).nodes == 1
    assert store.gauges(at(121), alive_since=at(121 - DEFAULT_LEASE_TTL)).nodes == 0


def test_a_listed_node_is_alive_within_its_own_lease(store: Store) -> None:
    _nodes(store)
    nodes = store.list_nodes()
    assert [n.id for n in nodes if n.alive_at(at(6))] == ["long", "unknown"]
    assert [n.id for n in nodes if n.alive_at(at(31))] == ["long"]
    assert [n.id for n in nodes if n.alive_at(at(31), fallback=60)] == ["long", "unknown"]


@pytest.mark.empty_database
def test_the_nodes_of_an_older_schema_fall_back_to_the_default_lease_after_upgrade(
    db_url: str,
) -> None:
    """Migration 0018 adds ``lease_ttl`` to the nodes already there, empty: they are
    judged by the reader's lease (30 s by default) until they register again."""
    old = open_at_version(db_url, 17)
    try:
        old_node(old)
        assert old.upgrade()[0] == 18
        (node,) = old.list_nodes()
        assert (node.id, node.lease_ttl, node.lease()) == ("n1", None, DEFAULT_LEASE_TTL)
        assert node.alive_at(at(30)) and not node.alive_at(at(31))
        assert old.dead_nodes(at(31), DEFAULT_LEASE_TTL) == ["n1"]
        old.register_node(Node("n1", "h", 1, at(40), at(40), lease_ttl=5.0))
        assert [n.lease_ttl for n in old.list_nodes()] == [5.0]
    finally:
        old.close()
