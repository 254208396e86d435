"""SQLite knows a killed node at once by its lock file (``store/sqlite_nodes.py``): real
processes registering through the store on a real file, SIGKILLed. No other node runs,
so nothing marks the killed one stopped: only its lock file can tell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tickwork.errors import ConflictError
from tickwork.models import DEFAULT_LEASE_TTL, Node
from tickwork.store.sqlite import SQLiteStore
from tickwork.store.sqlite_nodes import Liveness, liveness, lock_path

from .conftest import T0, at, worker


@contextmanager
def _node(store: SQLiteStore, node_id: str, *pid: str) -> Iterator[subprocess.Popen[str]]:
    """A process that registered ``node_id`` (with the pid given, if any) and waits."""
    with worker("node", store.url, node_id, *pid) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _alive_count(store: SQLiteStore) -> int:
    """The ``tickwork_nodes`` gauge as of one second after the node registered."""
    return store.gauges(at(1), alive_since=at(1 - DEFAULT_LEASE_TTL)).nodes


def test_a_killed_node_leaves_the_listing_and_the_gauge_and_is_dead_at_once(
    lite: SQLiteStore,
) -> None:
    """Its heartbeat is one second old and no node marked it stopped: it used to be
    listed, counted alive and kept its runs until its lease lapsed."""
    with _node(lite, "w1") as proc:
        assert [n.id for n in lite.list_nodes()] == ["w1"]
        assert _alive_count(lite) == 1
        assert lite.dead_nodes(at(1), 3600) == []
        _kill(proc)
        assert lite.list_nodes() == []
        assert _alive_count(lite) == 0
        assert lite.dead_nodes(at(1), 3600) == ["w1"]
        (row,) = lite.list_nodes(include_stopped=True)
        assert row.stopped_at is None  # only its lock file told


def test_a_killed_leader_is_replaced_at_once(lite: SQLiteStore) -> None:
    with _node(lite, "w1") as proc:
        lite.try_lead("w1", at(0), at(3600))  # as the node would have; its process lives
        assert not lite.try_lead("me", at(1), at(3601))
        _kill(proc)
        assert lite.try_lead("me", at(1), at(3601))  # though its lease runs an hour more


def test_a_dead_node_whose_pid_another_process_took_is_still_dead(lite: SQLiteStore) -> None:
    """The row's pid is alive (this test's process stands for the process that took the
    pid since): a check of the pid would keep the node alive for its whole lease."""
    with _node(lite, "w1", str(os.getpid())) as proc:
        assert lite.dead_nodes(at(1), 3600) == []
        _kill(proc)
        assert lite.dead_nodes(at(1), 3600) == ["w1"]
        assert lite.list_nodes() == []


def test_a_lock_taken_under_another_kernel_says_nothing(lite: SQLiteStore) -> None:
    """A node of another machine with the same host name, on a file shared over the
    network: its lock may not be seen from here, so a free lock proves nothing, and its
    pid missing here less still (checking the pid took such a node for dead and gave
    its running runs to another node). It is judged by its heartbeat."""
    with _node(lite, "far") as proc:
        _kill(proc)
    path = lock_path(lite._path, "far")
    said = json.loads(Path(path).read_text())
    Path(path).write_text(json.dumps(said | {"boot": "another-kernel"}))
    assert liveness(lite._path, "far", said["host"], said["pid"]) is Liveness.UNKNOWN
    assert lite.dead_nodes(at(1), 3600) == []
    assert [n.id for n in lite.list_nodes()] == ["far"]
    assert lite.dead_nodes(at(3601), 3600) == ["far"]  # its lease lapsed


def test_a_node_without_a_lock_file_is_judged_by_its_heartbeat(lite: SQLiteStore) -> None:
    """A node of an older tickwork (or one that could not write beside the database)."""
    with _node(lite, "old") as proc:
        _kill(proc)
    os.unlink(lock_path(lite._path, "old"))
    assert lite.dead_nodes(at(1), 3600) == []
    assert [n.id for n in lite.list_nodes()] == ["old"]


def test_a_live_node_id_cannot_be_registered_twice(lite: SQLiteStore) -> None:
    with _node(lite, "w1") as proc:
        with pytest.raises(ConflictError, match="held by another live process"):
            lite.register_node(Node("w1", "h", 1, T0, T0))
        _kill(proc)
        lite.register_node(Node("w1", "h", 1, T0, T0))  # its process is gone: taken over


def test_a_node_that_stops_cleanly_removes_its_lock_file(lite: SQLiteStore) -> None:
    lite.register_node(Node("n1", "h", os.getpid(), T0, T0))
    path = lock_path(lite._path, "n1")
    assert os.path.exists(path)
    assert [n.id for n in lite.list_nodes()] == ["n1"]  # held by this process
    lite.deregister_node("n1", at(1))
    assert not os.path.exists(path)


def test_a_forked_child_does_not_keep_the_node_alive(lite: SQLiteStore) -> None:
    """A process forked from the node (``multiprocessing`` with ``fork``) inherits the
    locked file: it closes its copy at once, else it would hold the lock for as long
    as it lives after the node died."""
    with worker("node-forks", lite.url, "w1") as proc:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "ready"
        try:
            _kill(proc)
            assert lite.dead_nodes(at(1), 3600) == ["w1"]
            assert lite.list_nodes() == []
        finally:
            os.kill(child, signal.SIGKILL)


def test_a_killed_node_s_file_goes_once_it_is_marked_stopped(lite: SQLiteStore) -> None:
    """The next node that registers removes it; a killed node not marked stopped yet
    keeps its file (it tells the others it is gone), and a live node's file stays."""
    with _node(lite, "live"), _node(lite, "dead") as dead, _node(lite, "killed") as killed:
        _kill(dead)
        _kill(killed)
        lite.deregister_node("dead", at(1))  # as recover_lost marks a dead node stopped
        lite.register_node(Node("next", "h", os.getpid(), T0, T0))
        left = {nid for nid in ("live", "dead", "killed", "next")
                if os.path.exists(lock_path(lite._path, nid))}  # fmt: skip
        assert left == {"live", "killed", "next"}
        assert lite.dead_nodes(at(1), 3600) == ["killed"]
