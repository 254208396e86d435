"""PostgreSQL's nodes: each registered node holds a session-level advisory lock for
its process's life, so a dead process is known at once (its session ends, the lock is
free) and a live one is never taken for dead because its heartbeat is late."""

from __future__ import annotations

import hashlib
import os
import select
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from tickwork.errors import ConflictError, StoreError
from tickwork.models import Node, TaskSpec
from tickwork.store.dialect import statements
from tickwork.store.nodes import Nodes
from tickwork.store.sql import Tx, _aware


#: How long ``register_node`` retries for a node lock another session holds.
def _raw(name: str) -> str:
    """A named PostgreSQL statement for a plain psycopg connection (``%s`` placeholders):
    the node lock's own connection runs outside the store's transactions."""
    return statements("postgres")[name].replace("?", "%s")


_TRY_NODE_LOCK: Final = _raw("try_node_lock")
_NODE_LOCK_RETAKEN: Final = _raw("node_lock_retaken")
_CONNECTION_ALIVE: Final = _raw("connection_alive")

LOCK_WAIT = 2.0
#: How long a node's lock must stay free before ``dead_nodes`` calls the node dead.
LOCK_GRACE = 1.0
#: How often a node's lock connection is checked when nothing arrives on it.
LOCK_CHECK = 1.0


def lock_key(kind: str, name: str) -> int:
    """A stable signed 64-bit advisory lock key for (kind, name)."""
    digest = hashlib.blake2b(f"tickwork:{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _NodeLock:
    """The session-level advisory lock a registered node holds while its process lives.

    A daemon thread waits on the lock connection's socket: when the server ends the
    session (restart, ``pg_terminate_backend``, network trouble) the socket wakes it
    and it takes the lock again on a new connection, and records when (``lock_at``).
    """

    def __init__(self, store: PgNodeLocks, node_id: str) -> None:
        self.store = store
        self.node_id = node_id
        self.key = lock_key("node", node_id)
        self.conn: psycopg.Connection[Any] | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()  # close() wakes the watcher through it

    def take(self, wait: float) -> bool:
        """Take the lock on a fresh connection, retrying up to ``wait`` seconds while
        another session holds it (a ``dead_nodes`` check holds it for an instant)."""
        deadline = time.monotonic() + wait
        while not self.stop.is_set():
            try:
                conn = self.store._connect()
            except StoreError:
                conn = None
            if conn is not None:
                try:
                    row = conn.execute(_TRY_NODE_LOCK, (self.key,)).fetchone()
                    if row and row[0]:
                        self.conn = conn
                        return True
                except psycopg.Error:
                    pass
                with suppress(Exception):
                    conn.close()
            if time.monotonic() >= deadline:
                return False
            self.stop.wait(0.05)
        return False

    def watch(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._watch, name=f"tickwork-node-lock-{self.node_id}", daemon=True
            )
            self.thread.start()

    def _watch(self) -> None:
        # Only this thread uses the connection once watching has started.
        while not self.stop.is_set():
            conn = self.conn
            if conn is not None and self._alive(conn):
                continue
            if conn is not None:
                with suppress(Exception):
                    conn.close()
                self.conn = None
            if self.take(wait=LOCK_CHECK):
                assert self.conn is not None
                with suppress(psycopg.Error):
                    self.conn.execute(_NODE_LOCK_RETAKEN, (self.node_id,))

    def _alive(self, conn: psycopg.Connection[Any]) -> bool:
        """Wait for the socket (or LOCK_CHECK seconds), then check the connection."""
        try:
            select.select([conn.fileno(), self._wake_r], [], [], LOCK_CHECK)
            if self.stop.is_set():
                return True
            conn.execute(_CONNECTION_ALIVE)
            return True
        except (OSError, ValueError, psycopg.Error):
            return False

    def close(self) -> None:
        """Stop watching and end the session, which releases the lock."""
        self.stop.set()
        with suppress(OSError):
            os.write(self._wake_w, b"x")
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(LOCK_CHECK + 5)
        conn, self.conn = self.conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()
        for fd in (self._wake_r, self._wake_w):
            with suppress(OSError):
                os.close(fd)


class PgNodeLocks(Nodes):
    """Nodes on PostgreSQL: registered with their lock, judged dead by it."""

    _node_lock: threading.Lock
    _node_locks: dict[str, _NodeLock]

    @abstractmethod
    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection of its own (not from the pool)."""

    def register_node(self, node: Node, task_specs: Sequence[TaskSpec] = ()) -> None:
        """Record the node and take its advisory lock on a connection kept for its life.

        A thread of this store watches that connection and takes the lock again at once
        if the connection is lost while the process lives (see ``dead_nodes``). Raises
        ``ConflictError`` when another live session holds the lock (the id is in use).
        """
        with self._node_lock:
            held = self._node_locks.get(node.id)
            if held is None:
                held = _NodeLock(self, node.id)
                if not held.take(wait=LOCK_WAIT):
                    held.close()
                    raise ConflictError(f"node {node.id!r} is held by another live process")
                self._node_locks[node.id] = held
        super().register_node(node, task_specs)
        with self._write() as tx:
            tx.execute(self._sql("node_lock_taken"), (held.key, node.id))
        held.watch()

    def deregister_node(self, node_id: str, now: datetime) -> None:
        super().deregister_node(node_id, now)
        with self._node_lock:
            held = self._node_locks.pop(node_id, None)
        if held is not None:
            held.close()  # ends the session: the lock is released

    def _node_liveness(self, now: datetime | None, fallback: float) -> tuple[set[str], set[str]]:
        """Nodes not stopped: (silent for longer than their lease as of ``now``, ``fallback``
        seconds for a node registered without one, and no lock held; lock free).

        The lock is probed with a transaction-level try-lock: granted only if the
        node's session does not hold it, released at commit so the node can take it
        again. Locks taken before the server last started mean nothing (a restart
        frees them all): those nodes are judged by their heartbeat alone.
        """
        with self._write() as tx:
            rows = tx.execute(
                self._sql("node_liveness"),
                (now if now is not None else datetime.min.replace(tzinfo=UTC), fallback),
            )
        stale = {nid for nid, old, free in rows if old and free is not False}
        free = {nid for nid, _, free in rows if free}
        return stale, free

    def dead_nodes(self, now: datetime, stale_after: timedelta | float) -> list[str]:
        """Nodes whose advisory lock stayed free for ``LOCK_GRACE``, plus nodes with a
        stale heartbeat that hold no lock (a held lock proves the process lives; a
        hung one is still caught by its runs' leases).

        A node's lock is free once its session ends: at once when its process dies.
        It is also free for a moment when a live node's lock connection drops (a
        network blip, ``pg_terminate_backend``) until its watcher takes it again,
        within milliseconds. So a free lock (with a fresh heartbeat) is checked again
        after ``LOCK_GRACE`` seconds (this call then blocks that long) and only a lock
        free both times counts: a dead process is known within about a second, a live
        node is not declared dead for a blip.
        """
        if isinstance(stale_after, timedelta):
            stale_after = stale_after.total_seconds()
        fallback = stale_after
        dead, free = self._node_liveness(_aware(now), fallback)
        suspects = free - dead
        if suspects:
            time.sleep(LOCK_GRACE)
            dead |= suspects & self._node_liveness(None, fallback)[1]
        return sorted(dead)

    def _lead_without_waiting(self, tx: Tx) -> None:
        """A node frozen or cut off inside ``try_lead`` keeps the lease row locked until
        the server ends its session (hours, for a partition it has not noticed): waited
        for, it would hold up every node's maintenance, takeovers included."""
        tx.execute(self._sql("lead_without_waiting"))

    def _leader_gone(self, tx: Tx, node_id: str) -> bool:
        """The leader's lock is free: its session ended (checked once: a false alarm
        only gives leadership to a live node, which the old leader notices at once)."""
        rows = tx.execute(self._sql("leader_gone"), (node_id,))
        return bool(rows)
