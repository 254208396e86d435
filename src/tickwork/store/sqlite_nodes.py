"""SQLite's nodes: each registered node holds a lock on a file of its own beside the
database, so a process that died is known at once, well before its lease lapses.

Why a lock file, and not the pid the node row records: a pid says nothing for sure.
Once the process is gone the pid may be taken by another process (soon, in a container
where every worker is pid 7), which would keep a dead node alive; and a row's host name
may be shared by another machine reaching the file through a shared directory (two
containers given one host name), where a pid missing here says nothing at all, and a
live node would be taken for dead and its runs executed twice. A lock the kernel holds
for the process cannot outlive it: when the process ends, however it ends (SIGKILL
included), its files are closed and the lock is free.

So a node takes ``flock(LOCK_EX)`` on ``<database>-node-<node>.lock`` when it
registers and keeps the file open for its life, with what it runs on written in it:
its host, its pid and the kernel's boot id. Another process tells a node gone when it
can take that lock itself (``LOCK_SH``, at once or not at all) and the file says the
node runs under this very kernel (same boot id: a lock taken under another kernel, on a
file shared over the network, may not be seen from here), with the pid and host of
the node's row, and the path still names the file it locked. Anything else, including
no file at all (a node of an older tickwork, a directory it could not write to), says
nothing, and the node is judged by its heartbeat and lease as before.

Two more guards: a node checks once, as it takes its lock, that a second open of the
file cannot take it too (some network file systems' locks do not exclude within one
process); where it can, the node writes no boot id, and nobody trusts the file. And a
process forked from a node (``multiprocessing`` with ``fork``) closes its inherited
copy of the file at once: it would otherwise hold the lock after the node died.

A node that stops cleanly removes its file; a killed node's file is removed by the
next node that registers once the killed one is marked stopped (``sweep``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from tickwork.errors import ConflictError
from tickwork.models import Node, TaskSpec
from tickwork.store.nodes import Nodes
from tickwork.store.sql import Tx

log = logging.getLogger("tickwork.store")

#: How long ``register_node`` retries for a lock another process holds (a check holds
#: it for an instant).
LOCK_WAIT: Final = 2.0
_BOOT_ID: Final = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str | None:
    """The running kernel's boot id (Linux): the same for every process and container
    under one kernel, and new at each boot. None where there is none."""
    try:
        with open(_BOOT_ID, encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def lock_path(db_path: str, node_id: str) -> str:
    """A node's lock file, beside the database as its ``-wal`` and ``-shm`` files are
    (so ``rm tickwork.db*`` takes it too): its id made safe for a file name, and a hash
    of the id so that two ids made alike stay apart."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", node_id)[:80]
    digest = hashlib.blake2b(node_id.encode(), digest_size=6).hexdigest()
    return f"{db_path}{_INFIX}{readable}.{digest}.lock"


_INFIX: Final = "-node-"


class Liveness(Enum):
    """What a node's lock file tells."""

    HELD = "held"  # a process holds the lock: the node lives
    GONE = "gone"  # free under this kernel: the node's process has ended
    UNKNOWN = "unknown"  # nothing to trust: judge by the heartbeat


class NodeLock:
    """The lock a registered node holds on its file while its process lives."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd: int | None = fd
        _HELD.add(self)

    @classmethod
    def take(cls, path: str, node: Node, wait: float = LOCK_WAIT) -> NodeLock | None:
        """Take the node's lock and write what it runs on; None when no lock can be had
        here (a directory not writable, a file system without locks), said once in the
        log: the node is then judged by its heartbeat. Raises ``ConflictError`` when a
        live process keeps the lock (the node id is in use)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                log.warning(
                    "node %s: cannot open its lock file %s (%s): it is judged by its heartbeat",
                    node.id,
                    path,
                    exc,
                )
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    log.warning(
                        "node %s: cannot lock %s (%s): it is judged by its heartbeat",
                        node.id,
                        path,
                        exc,
                    )
                    return None
                if time.monotonic() >= deadline:
                    raise ConflictError(
                        f"node {node.id!r} is held by another live process"
                    ) from None
                time.sleep(0.02)
                continue
            if not _names(path, fd):  # removed or replaced meanwhile: lock the new one
                os.close(fd)
                continue
            lock = cls(path, fd)
            lock._describe(node)
            return lock

    def _describe(self, node: Node) -> None:
        """Write what a check compares: the boot id only where the lock excludes a
        second open file of this very process."""
        assert self.fd is not None
        boot = boot_id() if _excludes(self.path) else None
        text = json.dumps({"node": node.id, "host": node.host, "pid": node.pid, "boot": boot})
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, text.encode(), 0)

    def release(self) -> None:
        """Remove the file and let go of the lock (the node stopped cleanly)."""
        fd, self.fd = self.fd, None
        _HELD.discard(self)
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _forget_in_child(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # the parent's lock stays: its own descriptor is open


#: The locks this process holds, closed in a forked child (see the module).
_HELD: weakref.WeakSet[NodeLock] = weakref.WeakSet()


def _close_in_child() -> None:
    for lock in list(_HELD):
        lock._forget_in_child()
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _names(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        on_disk, opened = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _excludes(path: str) -> bool:
    """Whether a second open of ``path`` fails to take the lock this process holds on it.

    Where it does not (locks that are per process, as on some network file systems),
    the probe's ``close`` may have released the lock too; the file is marked untrusted
    either way."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def liveness(db_path: str, node_id: str, host: str, pid: int) -> Liveness:
    """What the lock file of the node ``(node_id, host, pid)`` tells, as of now.

    Takes the lock shared for an instant (never waits), and reads the file while
    holding it: the file is the node's, written under this kernel, and still the one
    the path names."""
    path = lock_path(db_path, node_id)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return Liveness.UNKNOWN  # none: an older tickwork, or no lock could be had
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return Liveness.HELD
            return Liveness.UNKNOWN
        said = _said(fd)
        if (
            said.get("boot") is not None
            and said.get("boot") == boot_id()
            and said.get("node") == node_id
            and said.get("host") == host
            and said.get("pid") == pid
            and _names(path, fd)
        ):
            return Liveness.GONE
        return Liveness.UNKNOWN
    finally:
        os.close(fd)


def _said(fd: int) -> dict[str, Any]:
    """What a lock file says (nothing when it is empty or not its JSON)."""
    try:
        said = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return {}
    return said if isinstance(said, dict) else {}


def sweep(db_path: str, listed: Collection[str]) -> int:
    """Remove the lock files whose lock is free and whose node is not ``listed`` (not
    stopped): a killed node's file once another node marked it stopped, under this
    kernel or another. A free lock under another kernel may belong to a live node
    that was taken for dead: without its file it is judged by its heartbeat, as it was.
    The files removed: how many."""
    folder, base = os.path.split(db_path)
    prefix = base + _INFIX
    try:
        names = [n for n in os.listdir(folder or ".") if n.startswith(prefix)]
    except OSError:
        return 0
    removed = 0
    for name in names:
        if not name.endswith(".lock"):
            continue
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            if _said(fd).get("node") not in listed and _names(path, fd):
                os.unlink(path)
                removed += 1
        except OSError:
            pass  # held (its node lives), or not ours to remove
        finally:
            os.close(fd)
    return removed


class SQLiteNodeLocks(Nodes):
    """Nodes on SQLite: registered with their lock file, and a node whose file tells it
    gone is neither listed nor counted alive, is dead at once, and leads no more."""

    _path: str
    _node_locks: dict[str, NodeLock]
    _node_locks_lock: threading.Lock

    def register_node(self, node: Node, task_specs: Sequence[TaskSpec] = ()) -> None:
        """Take the node's lock file (see the module) and record the node. Raises
        ``ConflictError`` when a live process holds the node's lock."""
        with self._node_locks_lock:
            if node.id not in self._node_locks:
                lock = NodeLock.take(lock_path(self._path, node.id), node)
                if lock is not None:
                    self._node_locks[node.id] = lock
        super().register_node(node, task_specs)
        with self._read() as tx:
            listed = {str(r[0]) for r in tx.execute(self._sql("running_node_processes"))}
        sweep(self._path, listed)

    def deregister_node(self, node_id: str, now: datetime) -> None:
        super().deregister_node(node_id, now)
        with self._node_locks_lock:
            lock = self._node_locks.pop(node_id, None)
        if lock is not None:
            lock.release()

    def release_node_locks(self) -> None:
        """Let go of every lock this store took (it closes)."""
        with self._node_locks_lock:
            locks, self._node_locks = list(self._node_locks.values()), {}
        for lock in locks:
            lock.release()

    def _gone(self, rows: Iterable[Sequence[Any]]) -> set[str]:
        """Of ``(id, host, pid, ...)`` rows, the nodes whose lock file tells them gone.
        Only files of nodes on a host of this name are looked at (the boot id then
        decides)."""
        here = socket.gethostname()
        return {
            str(r[0])
            for r in rows
            if r[1] == here and liveness(self._path, r[0], r[1], int(r[2])) is Liveness.GONE
        }

    def list_nodes(self, *, include_stopped: bool = False) -> list[Node]:
        """As on any store; without ``include_stopped``, less the nodes whose process
        is known gone (not marked stopped yet), as PostgreSQL leaves out a node whose
        session lock is free."""
        nodes = super().list_nodes(include_stopped=include_stopped)
        if include_stopped:
            return nodes
        gone = self._gone((n.id, n.host, n.pid) for n in nodes)
        return [n for n in nodes if n.id not in gone]

    def _nodes_gauge(self, tx: Tx, now: datetime, fallback: float) -> tuple[int, int, int]:
        rows = tx.execute(self._sql("gauge_node_rows"), (self._ts(now), fallback))
        gone = self._gone(rows)
        alive = [r for r in rows if r[0] not in gone]
        return len(alive), sum(int(r[3]) for r in alive), sum(int(r[4]) for r in alive)

    def dead_nodes(self, now: datetime, stale_after: timedelta | float) -> list[str]:
        """Silent for longer than their lease, plus nodes whose lock file tells them
        gone (a held lock does not outweigh a stale heartbeat here: a lock left to a
        hung process, or one this kernel cannot see, must not keep its runs)."""
        dead = set(super().dead_nodes(now, stale_after))
        with self._read() as tx:
            rows = tx.execute(self._sql("running_node_processes"))
        return sorted(dead | self._gone(rows))

    def _leader_gone(self, tx: Tx, node_id: str) -> bool:
        """Stopped, or its lock file tells it gone."""
        rows = tx.execute(self._sql("node_process"), (node_id,))
        if not rows:
            return False
        host, pid, stopped_at = rows[0]
        return stopped_at is not None or bool(self._gone([(node_id, host, pid)]))
