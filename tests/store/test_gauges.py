"""``Store.gauges``: what a metrics scrape reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from tickwork.models import Node
from tickwork.store.base import Store

from .conftest import T0, at


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
