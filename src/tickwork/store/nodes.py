"""Nodes and leadership: nodes registered with their tasks, taken for dead by
their heartbeat, and the one leader's lease."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tickwork.models import Node, TaskSpec
from tickwork.store.codec import _aware, dumps, loads
from tickwork.store.dialect import SqlCore, Tx


class Nodes(SqlCore):
    """Nodes and the leader's lease."""

    def register_node(self, node: Node, task_specs: Sequence[TaskSpec] = ()) -> None:
        ts = self._ts
        with self._write() as tx:
            tx.execute(
                self._sql("register_node"),
                (
                    node.id,
                    node.host,
                    node.pid,
                    ts(_aware(node.started_at)),
                    ts(_aware(node.heartbeat_at)),
                    dumps(sorted(node.tasks), "tasks"),
                    node.lease_ttl,
                ),
            )
            if node.tasks:
                specs = {spec.name: spec for spec in task_specs}
                tx.executemany(
                    self._sql("publish_task"),
                    [
                        (t, dumps(specs[t].to_dict(), "spec") if t in specs else None)
                        for t in sorted(set(node.tasks))
                    ],
                )

    def deregister_node(self, node_id: str, now: datetime) -> None:
        t_now = self._ts(_aware(now))
        with self._write() as tx:
            tx.execute(self._sql("stop_node"), (t_now, node_id))
            # Whatever it still held is up for recovery from now on.
            tx.execute(self._sql("release_node_leases"), (t_now, node_id))
            tx.execute(self._sql("leave_lead"), (node_id,))

    def list_nodes(self, *, include_stopped: bool = False) -> list[Node]:
        listed = "list_nodes" if include_stopped else "list_running_nodes"
        with self._read(snapshot=True) as tx:
            rows = tx.execute(self._sql(listed))
            running = dict(tx.execute(self._sql("running_per_node")))
            leader = tx.execute(self._sql("leader"))
        lead = leader[0][0] if leader else None
        return [self._node(r, lead, int(running.get(r[0], 0))) for r in rows]

    def known_tasks(self) -> set[str]:
        with self._read() as tx:
            return {name for (name,) in tx.execute(self._sql("published_task_names"))}

    def task_spec(self, name: str) -> TaskSpec | None:
        with self._read() as tx:
            rows = tx.execute(self._sql("published_task_spec"), (name,))
        if not rows or rows[0][0] is None:
            return None
        return TaskSpec.from_dict(loads(rows[0][0]))

    def try_lead(self, node_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take or renew the lease. Taken over when it lapsed, or at once when the
        database can tell its holder is gone (``_leader_gone``)."""
        try:
            t_until = self._ts(_aware(lease_until))
            with self._write() as tx:
                self._lead_without_waiting(tx)
                rows = tx.execute(self._sql("leader_locked"))
                if not rows:
                    got = tx.execute(self._sql("take_free_lead"), (node_id, t_until))
                    return bool(got)
                holder, until = rows[0][0], self._dt(rows[0][1])
                assert until is not None
                if holder != node_id and until >= now and not self._leader_gone(tx, holder):
                    return False
                tx.execute(self._sql("take_lead"), (node_id, t_until))
                if holder != node_id:
                    self._notify_tx(tx)
                return True
        except Exception:  # fail closed: any doubt means "not the leader"
            return False

    def _lead_without_waiting(self, tx: Tx) -> None:
        """Bound the wait for the lease row to a moment, where a session may hold it
        for long (SQLite: one writer at a time, bounded by busy_timeout already)."""

    def _leader_gone(self, tx: Tx, node_id: str) -> bool:
        """Whether the database can tell at once that the lease holder is gone."""
        rows = tx.execute(self._sql("node_stopped"), (node_id,))
        return bool(rows)

    def release_lead(self, node_id: str) -> None:
        with self._write() as tx:
            if tx.execute(self._sql("release_lead"), (node_id,)):
                self._notify_tx(tx)

    def dead_nodes(self, now: datetime, stale_after: timedelta | float) -> list[str]:
        fallback = _seconds(stale_after)
        with self._read() as tx:
            rows = tx.execute(self._sql("silent_nodes"), (self._ts(_aware(now)), fallback))
        return [r[0] for r in rows]


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
