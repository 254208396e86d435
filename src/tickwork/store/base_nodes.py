"""The store interface, part three: nodes, the tasks they publish, which are dead, and
the one leader's lease. ``Store`` (``store/base.py``) inherits it; the same rules hold:
one transaction per method, no clock read (every instant comes in as an argument)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta

from tickwork.models import Node, TaskSpec


class NodeStore(ABC):
    """Nodes and leadership (SQL in store/nodes.py; PostgreSQL's locks in
    store/postgres_nodes.py)."""

    @abstractmethod
    def register_node(self, node: Node, task_specs: Sequence[TaskSpec] = ()) -> None:
        """Record a starting node and publish its task names, with each task's spec
        (arguments and defaults; the newest publication of a name wins)."""

    @abstractmethod
    def deregister_node(self, node_id: str, now: datetime) -> None:
        """Mark the node stopped (cleanly); it keeps no leases after this."""

    @abstractmethod
    def list_nodes(self, *, include_stopped: bool = False) -> list[Node]:
        """Known nodes, with how many runs each has running and who leads."""

    @abstractmethod
    def known_tasks(self) -> set[str]:
        """Task names published by any node, running or past."""

    @abstractmethod
    def task_spec(self, name: str) -> TaskSpec | None:
        """The spec last published for a task, or None (unknown, or published without)."""

    def dead_nodes(self, now: datetime, stale_after: timedelta | float) -> list[str]:
        """Ids of nodes not stopped that are dead, for ``recover_lost``.

        By default: nodes silent for longer than their own ``lease_ttl`` (as registered:
        a node renews its heartbeat every third of it), or than ``stale_after`` (seconds
        or a timedelta) for a node registered without one. Implementations add what the
        database can tell at once: on SQLite, nodes whose lock file (held for the
        node's life since ``register_node``) is free under this kernel; on PostgreSQL,
        nodes whose session-level advisory lock, held by a connection kept open for the
        node's life since ``register_node``, is free, i.e. whose process died (there a
        held lock also outweighs a stale heartbeat: the process lives, and if it hangs
        its runs' leases lapse). Read-only, but it
        may take about a second on PostgreSQL to confirm a free lock.
        """
        if isinstance(stale_after, timedelta):
            stale_after = stale_after.total_seconds()
        return sorted(n.id for n in self.list_nodes() if n.silent_for(now) > n.lease(stale_after))

    @abstractmethod
    def try_lead(self, node_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take or renew the leadership lease. True only if ``node_id`` holds it until
        ``lease_until``; any error means False (fail closed). Another node's lease is
        taken over when it lapsed (``lease_until < now``) or, at once, when the
        database can tell its holder is gone (stopped; on PostgreSQL its advisory lock
        free; on SQLite its lock file free)."""

    @abstractmethod
    def release_lead(self, node_id: str) -> None:
        """Give up leadership if held."""
