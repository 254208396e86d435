"""Nodes and leadership: nodes registered with their tasks, taken for dead by
their heartbeat, and the one leader's lease."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tickwork.models import Node, TaskSpec
from tickwork.store.codec import NODE_COLUMNS, _aware, dumps, loads
from tickwork.store.dialect import SqlCore, Tx


class Nodes(SqlCore):
    """Nodes and the leader's lease."""

    def register_node(self, node: Node, task_specs: Sequence[TaskSpec] = ()) -> None:
        ts = self._ts
        with self._write() as tx:
            tx.execute(
                f"INSERT INTO nodes ({', '.join(NODE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,"
                " tasks = excluded.tasks, stopped_at = NULL",
                (
                    node.id,
                    node.host,
                    node.pid,
                    ts(_aware(node.started_at)),
                    ts(_aware(node.heartbeat_at)),
                    dumps(sorted(node.tasks), "tasks"),
                ),
            )
            if node.tasks:
                specs = {spec.name: spec for spec in task_specs}
                tx.executemany(
                    "INSERT INTO published_tasks (name, spec) VALUES (?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET spec = COALESCE(excluded.spec, published_tasks.spec)",
                    [
                        (t, dumps(specs[t].to_dict(), "spec") if t in specs else None)
                        for t in sorted(set(node.tasks))
                    ],
                )

    def deregister_node(self, node_id: str, now: datetime) -> None:
        t_now = self._ts(_aware(now))
        with self._write() as tx:
            tx.execute("UPDATE nodes SET stopped_at = ? WHERE id = ?", (t_now, node_id))
            # Whatever it still held is up for recovery from now on.
            tx.execute(
                "UPDATE runs SET lease_until = ? WHERE node = ? AND status = 'running'",
                (t_now, node_id),
            )
            tx.execute("DELETE FROM leader WHERE node_id = ?", (node_id,))

    def list_nodes(self, *, include_stopped: bool = False) -> list[Node]:
        sql = f"SELECT {', '.join(NODE_COLUMNS)}, stuck_threads FROM nodes"
        if not include_stopped:
            sql += " WHERE stopped_at IS NULL"
        with self._read(snapshot=True) as tx:
            rows = tx.execute(sql + " ORDER BY id")
            running = dict(
                tx.execute("SELECT node, COUNT(*) FROM runs WHERE status = 'running' GROUP BY node")
            )
            leader = tx.execute("SELECT node_id FROM leader WHERE id = 1")
        lead = leader[0][0] if leader else None
        return [self._node(r, lead, int(running.get(r[0], 0))) for r in rows]

    def known_tasks(self) -> set[str]:
        with self._read() as tx:
            return {name for (name,) in tx.execute("SELECT name FROM published_tasks")}

    def task_spec(self, name: str) -> TaskSpec | None:
        with self._read() as tx:
            rows = tx.execute("SELECT spec FROM published_tasks WHERE name = ?", (name,))
        if not rows or rows[0][0] is None:
            return None
        return TaskSpec.from_dict(loads(rows[0][0]))

    def try_lead(self, node_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take or renew the lease. Taken over when it lapsed, or at once when the
        database can tell its holder is gone (``_leader_gone``)."""
        try:
            t_until = self._ts(_aware(lease_until))
            with self._write() as tx:
                rows = tx.execute(self._sql("leader_locked"))
                if not rows:
                    got = tx.execute(
                        "INSERT INTO leader (id, node_id, lease_until) VALUES (1, ?, ?)"
                        " ON CONFLICT (id) DO NOTHING RETURNING node_id",
                        (node_id, t_until),
                    )
                    return bool(got)
                holder, until = rows[0][0], self._dt(rows[0][1])
                assert until is not None
                if holder != node_id and until >= now and not self._leader_gone(tx, holder):
                    return False
                tx.execute(
                    "UPDATE leader SET node_id = ?, lease_until = ? WHERE id = 1",
                    (node_id, t_until),
                )
                if holder != node_id:
                    self._notify_tx(tx)
                return True
        except Exception:  # fail closed: any doubt means "not the leader"
            return False

    def _leader_gone(self, tx: Tx, node_id: str) -> bool:
        """Whether the database can tell at once that the lease holder is gone."""
        rows = tx.execute("SELECT 1 FROM nodes WHERE id = ? AND stopped_at IS NOT NULL", (node_id,))
        return bool(rows)

    def release_lead(self, node_id: str) -> None:
        with self._write() as tx:
            if tx.execute("DELETE FROM leader WHERE node_id = ? RETURNING id", (node_id,)):
                self._notify_tx(tx)

    def dead_nodes(self, now: datetime, stale_after: timedelta | float) -> list[str]:
        if not isinstance(stale_after, timedelta):
            stale_after = timedelta(seconds=stale_after)
        cutoff = self._ts(_aware(now) - stale_after)
        with self._read() as tx:
            rows = tx.execute(
                "SELECT id FROM nodes WHERE stopped_at IS NULL AND heartbeat_at < ? ORDER BY id",
                (cutoff,),
            )
        return [r[0] for r in rows]
