"""Real worker processes sharing one PostgreSQL database.

Three workers share 1-second schedules while one is SIGKILLed mid-run; every
connection is dropped with ``pg_terminate_backend`` under load; a ``run_now`` from a
client process reaches an idle worker through LISTEN/NOTIFY; ``tickwork status``
shows the nodes, the leader and what each runs. The last four tests guard node
liveness: each reproduced a defect found while writing this file (fixed in the store
and engine since).

Which node runs what is chosen with ``tests.e2e.pg_tasks``: only workers started with
``--import tests.e2e.pg_tasks`` can run ``pg:hold``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import PG_URL
from tests.e2e.conftest import Worker, Workers, cli_status, wait_for
from tickwork import SyncScheduler
from tickwork.errors import StoreError
from tickwork.models import Node, Run
from tickwork.store.postgres import lock_key
from tickwork.store.url import open_store

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(90)]

LEASE_TTL = 10.0
TICKS = 4  # schedules firing every second
HOLDER = ("--import", "tests.e2e.pg_tasks")  # a worker that can run pg:hold
HOLD_RETRY = {"max_attempts": 3, "delay": 0.2, "jitter": False}


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def workers(pg_url: str, workers: Workers) -> Iterator[Workers]:
    """The e2e ``workers``, each killed at the end if still up (closing its log),
    before their database is dropped."""
    yield workers
    for w in workers.started:
        w.kill()


def _client(url: str) -> SyncScheduler:
    return SyncScheduler(url, engine=False)


def _alive(worker: Worker) -> None:
    """Fail at once, with what it printed, if the worker exited."""
    if worker.proc.poll() is not None:
        raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.output()}")


def _node_ids(client: SyncScheduler) -> dict[int, str]:
    """Node id by worker pid."""
    return {n.pid: n.id for n in client.nodes()}


def _start_leader(
    workers: Workers, url: str, client: SyncScheduler, *extra: str, ttl: float = LEASE_TTL
) -> Worker:
    """Start the first worker and wait until it leads."""
    first = workers.start(url, "--lease-ttl", str(ttl), *extra)

    def leads() -> bool:
        _alive(first)
        return any(n.is_leader and n.pid == first.proc.pid for n in client.nodes())

    wait_for(leads, 30, "the first worker to lead")
    return first


def _start(
    workers: Workers, url: str, client: SyncScheduler, *extra: str, ttl: float = LEASE_TTL
) -> Worker:
    worker = workers.start(url, "--lease-ttl", str(ttl), *extra)

    def registered() -> bool:
        _alive(worker)
        return worker.proc.pid in _node_ids(client)

    wait_for(registered, 30, "a worker to register")
    return worker


def _add_ticks(client: SyncScheduler, prefix: str, max_instances: int = 5) -> datetime:
    """``TICKS`` schedules firing every second from two seconds from now."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    for i in range(TICKS):
        client.add_schedule(
            "e2e:tick",
            "every 1s",
            id=f"{prefix}{i}",
            start_at=start,
            catchup="all",
            overlap="allow",
            max_instances=max_instances,
        )
    return start


def _unfinished(client: SyncScheduler) -> list[Run]:
    return client.list_runs(status=["pending", "running", "retrying"], limit=1000)


def _stop_ticks(client: SyncScheduler) -> None:
    """Pause every schedule and wait until no run is unfinished."""
    client.pause()
    wait_for(lambda: not _unfinished(client), 30, "the last runs to finish", interval=0.2)


def _check_every_second_once(
    client: SyncScheduler, workers: Workers, prefix: str, start: datetime
) -> list[Run]:
    """Per schedule: one run per second from ``start``, no gap, no duplicate, all
    succeeded, and the executions log agrees. Returns every run."""
    log = [e for e in workers.executions() if e["schedule_id"].startswith(prefix)]
    executed = Counter(e["run_id"] for e in log)
    everything: list[Run] = []
    for i in range(TICKS):
        sid = f"{prefix}{i}"
        runs = client.list_runs(sid, limit=1000)
        times = sorted(r.scheduled_for for r in runs)
        assert len(times) == len(set(times)), f"{sid}: two runs for one scheduled second"
        assert times == [start + timedelta(seconds=k) for k in range(len(times))], (
            f"{sid}: a scheduled second is missing"
        )
        statuses = Counter(r.status for r in runs)
        assert set(statuses) == {"succeeded"}, (sid, statuses)
        # The log: each second executed by the one run recorded for it; a run executed
        # more than once only if an attempt of it was lost (at-least-once).
        logged = {(e["scheduled_for"], e["run_id"]) for e in log if e["schedule_id"] == sid}
        per_second = Counter(second for second, _ in logged)
        assert max(per_second.values()) == 1, f"{sid}: one second executed by two runs"
        assert set(per_second) == {t.isoformat() for t in times}, f"{sid}: the log differs"
        for r in runs:
            assert executed[r.id] >= 1, f"{sid} {r.scheduled_for}: never executed"
            if executed[r.id] > 1:
                assert any(a.status == "lost" for a in r.attempts), r
        everything.extend(runs)
    return everything


def _log_of(workers: Workers, schedule_id: str, phase: str) -> list[dict[str, Any]]:
    return [
        e
        for e in workers.executions()
        if e["schedule_id"] == schedule_id and e.get("phase") == phase
    ]


def _terminate_backends(url: str, where: str = "TRUE", params: tuple[Any, ...] = ()) -> int:
    """Drop the other connections to the test database (those matching ``where``)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}",
            params,
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def _node_lock_rows(node_id: str, granted: bool = True) -> str:
    """A query counting the sessions holding (or waiting for) the node's advisory lock."""
    key = lock_key("node", node_id) & (2**64 - 1)
    return (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        f" AND granted = {granted} AND classid::bigint = {key >> 32}"
        f" AND objid::bigint = {key & 0xFFFFFFFF}"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )


def _lock_holder(node_id: str) -> str:
    """A ``pg_stat_activity`` condition: the backend holding the node's advisory lock."""
    key = lock_key("node", node_id) & (2**64 - 1)
    return (
        "pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        f" AND classid::bigint = {key >> 32} AND objid::bigint = {key & 0xFFFFFFFF})"
    )


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _lost_at(client: SyncScheduler, run_id: str) -> datetime | None:
    """When the run's first attempt was recorded ``lost``, if it was."""
    attempts = client.get_run(run_id).attempts
    if attempts and attempts[0].status == "lost":
        return attempts[0].finished_at
    return None


# -- the tests -------------------------------------------------------------------------


def test_three_workers_one_killed_mid_run_every_second_once_and_takeover(
    workers: Workers, pg_url: str
) -> None:
    with _client(pg_url) as client:
        # The leader cannot run pg:hold, so the node killed below is never the leader
        # (a killed leader is test_killed_leader_is_taken_over_within_the_lease).
        leader = _start_leader(workers, pg_url, client)
        others = [_start(workers, pg_url, client, *HOLDER) for _ in range(2)]
        start = _add_ticks(client, "k")
        client.add_schedule("pg:hold", "manual", id="hold", data={"seconds": 6}, retry=HOLD_RETRY)
        wait_for(lambda: datetime.now(UTC) > start + timedelta(seconds=4), 15, "ticks")
        hold = client.run_now("hold")
        wait_for(lambda: _log_of(workers, "hold", "start"), 10, "the hold run to start")
        holder = _log_of(workers, "hold", "start")[0]
        victim = next(w for w in others if w.proc.pid == holder["pid"])
        survivors = [leader] + [w for w in others if w is not victim]
        survivor_ids = {_node_ids(client)[w.proc.pid] for w in survivors}
        victim.kill()  # mid-run: it dies holding the lease of the hold run
        killed_at = datetime.now(UTC)

        wait_for(lambda: _lost_at(client, hold.id), 2 * LEASE_TTL, "the attempt to be lost")
        lost_at = _lost_at(client, hold.id)
        assert lost_at is not None
        takeover = (lost_at - killed_at).total_seconds()
        wait_for(lambda: client.get_run(hold.id).status == "succeeded", 20, "the retry")
        wait_for(lambda: datetime.now(UTC) > killed_at + timedelta(seconds=6), 15, "ticks")
        _stop_ticks(client)
        for w in survivors:
            assert w.terminate() == 0, w.output()

        run = client.get_run(hold.id)
        assert [a.status for a in run.attempts] == ["lost", "succeeded"]
        assert run.attempts[0].node == holder["node"]
        assert run.attempts[1].node in survivor_ids
        assert "died" in (run.attempts[0].error or ""), run.attempts[0].error
        # Known dead by its free advisory lock (at the leader's next maintenance, every
        # lease_ttl / 2), not when its lease ran out.
        assert takeover < LEASE_TTL * 0.75, f"takeover took {takeover:.1f} s"

        runs = _check_every_second_once(client, workers, "k", start)
        assert len(runs) >= TICKS * 10
        after = [r for r in runs if r.scheduled_for > killed_at + timedelta(seconds=1)]
        nodes_after = Counter(r.node for r in after)
        assert set(nodes_after) == survivor_ids, nodes_after  # both survivors worked


def test_dropped_connections_under_load_lose_and_double_nothing(
    workers: Workers, pg_url: str
) -> None:
    with _client(pg_url) as client:
        pool = [_start(workers, pg_url, client) for _ in range(3)]
        # Room for a few seconds of stall, so no fire is skipped by the overlap limit.
        start = _add_ticks(client, "d", max_instances=30)
        client.add_schedule("e2e:tick", "manual", id="burst", overlap="allow", max_instances=100)
        wait_for(lambda: datetime.now(UTC) > start + timedelta(seconds=2), 15, "ticks")
        burst: list[str] = []
        dropped = []
        for _ in range(4):
            for _ in range(10):  # manual runs made while connections come and go
                # This client's own connection may be the one dropped: not the point.
                with contextlib.suppress(StoreError):
                    burst.append(client.run_now("burst").id)
            time.sleep(1.0)
            dropped.append(_terminate_backends(pg_url))
        last_drop = datetime.now(UTC)
        assert min(dropped) >= 3, dropped  # each drop hit the workers' connections
        wait_for(lambda: datetime.now(UTC) > last_drop + timedelta(seconds=3), 10, "ticks")
        _stop_ticks(client)
        assert all(w.proc.poll() is None for w in pool), "a worker died"
        for w in pool:
            assert w.terminate() == 0, w.output()

        runs = _check_every_second_once(client, workers, "d", start)
        assert len(runs) >= TICKS * 6
        assert len(burst) >= 30
        executed = Counter(e["run_id"] for e in workers.executions())
        for run_id in burst:
            run = client.get_run(run_id)
            assert run.status == "succeeded", run
            assert executed[run_id] == 1 or any(a.status == "lost" for a in run.attempts)


def test_workers_resume_at_once_after_the_database_refused_them_for_seconds(
    workers: Workers, pg_url: str
) -> None:
    """The database refuses every connection for 6 s while two workers fire 1 s
    schedules: both keep running, and fire again within seconds of its return, every
    second run once (before: each worker's pool closed itself a second into the outage,
    and the workers heartbeat-failed for good)."""
    db = pg_url.rsplit("/", 1)[1]
    with _client(pg_url) as client:
        # A call waits 2 s for a connection: several fail within the outage.
        pool = [_start(workers, pg_url + "?pool_timeout=2", client) for _ in range(2)]
        start = _add_ticks(client, "o", max_instances=30)
    wait_for(lambda: datetime.now(UTC) > start + timedelta(seconds=3), 15, "ticks")
    with psycopg.connect(PG_URL, autocommit=True) as admin:  # only another db can close db
        admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (db,),
            )
            time.sleep(6.0)
        finally:
            admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
    back = datetime.now(UTC)
    assert all(w.proc.poll() is None for w in pool), "a worker died"

    def fired_since_back() -> bool:
        sql = f"SELECT count(*) FROM runs WHERE status = 'succeeded' AND started_at > '{back}'"
        return _count(pg_url, sql) >= TICKS

    wait_for(fired_since_back, 10, "runs started after the database came back")
    with _client(pg_url) as client:
        wait_for(lambda: datetime.now(UTC) > back + timedelta(seconds=3), 10, "ticks")
        _stop_ticks(client)
        for w in pool:
            assert w.terminate() == 0, w.output()
        runs = _check_every_second_once(client, workers, "o", start)
    assert len(runs) >= TICKS * 12


def test_run_now_reaches_an_idle_worker_through_notify_and_status_shows_nodes(
    workers: Workers, pg_url: str
) -> None:
    with _client(pg_url) as client:
        pool = [_start_leader(workers, pg_url, client), _start(workers, pg_url, client)]
        client.add_schedule("e2e:tick", "manual", id="m")
        time.sleep(0.5)  # both workers now sleep: nothing is due, ever (60 s recheck)
        latencies = []
        for _ in range(10):
            run = client.run_now("m", wait=True, timeout=10)
            assert run.status == "succeeded"
            assert run.created_at is not None and run.started_at is not None
            latencies.append((run.started_at - run.created_at).total_seconds())
            time.sleep(0.2)
        # SQLite's fallback polls every 50 ms, and without a wake-up an idle PostgreSQL
        # node would only look again after a minute.
        assert statistics.median(latencies) < 0.3, latencies
        assert max(latencies) < 1.0, latencies

        client.add_schedule(
            "e2e:sync_slow",
            "manual",
            id="slow",
            # Running for the whole of a `tickwork status` call, a few seconds on a busy
            # machine.
            data={"seconds": 10},
            overlap="allow",
            max_instances=10,
        )
        for _ in range(4):
            client.run_now("slow")
        wait_for(lambda: len(_log_of(workers, "slow", "start")) == 4, 10, "4 running runs")
        status = cli_status(pg_url)
        running = Counter(r.node for r in client.list_runs("slow", status="running"))
        ids = _node_ids(client)
        nodes = {n["id"]: n for n in status["nodes"]}
        assert set(nodes) == {ids[w.proc.pid] for w in pool}
        assert [n["id"] for n in nodes.values() if n["is_leader"]] == [ids[pool[0].proc.pid]]
        assert {i: n["running"] for i, n in nodes.items() if n["running"]} == dict(running)
        assert status["running"] == 4
        assert status["leader"] == ids[pool[0].proc.pid]
        by_node = {i: sorted(n["running_runs"]) for i, n in nodes.items() if n["running_runs"]}
        slow_runs = client.list_runs("slow", status="running")
        expected: dict[str, list[str]] = {}
        for r in slow_runs:
            expected.setdefault(r.node or "", []).append(r.id)
        assert by_node == {k: sorted(v) for k, v in expected.items()}
        for w in pool:
            assert w.terminate() == 0, w.output()


# -- node liveness ------------------------------------------------------------------------


def test_killed_leader_is_taken_over_within_the_lease(workers: Workers, pg_url: str) -> None:
    """The leader's own runs are taken over when it dies, not when its leadership
    lease lapses (it used to be: only the leader recovered runs, and a dead leader's
    lease was honoured to its end, so takeover took up to 1.5 x lease_ttl)."""
    ttl = 6.0
    with _client(pg_url) as client:
        leader = _start_leader(workers, pg_url, client, *HOLDER, ttl=ttl)
        _start(workers, pg_url, client, ttl=ttl)
        client.add_schedule("pg:hold", "manual", id="hold", data={"seconds": 30}, retry=HOLD_RETRY)
        hold = client.run_now("hold")  # only the leader can run it
        wait_for(lambda: _log_of(workers, "hold", "start"), 10, "the hold run to start")
        with psycopg.connect(pg_url, autocommit=True) as conn:

            def lease() -> datetime:
                return conn.execute("SELECT lease_until FROM leader").fetchone()[0]  # type: ignore[index]

            renewed = lease()
            wait_for(lambda: lease() != renewed, 2 * ttl, "a renewal", interval=0.01)
        leader.kill()  # just after it renewed its leadership
        killed_at = datetime.now(UTC)
        wait_for(lambda: _lost_at(client, hold.id), 4 * ttl, "the attempt to be lost")
        lost_at = _lost_at(client, hold.id)
        assert lost_at is not None
        takeover = (lost_at - killed_at).total_seconds()
        assert takeover < 0.9 * ttl, f"takeover took {takeover:.1f} s, lease {ttl} s"


def test_live_node_keeps_its_run_when_its_lock_connection_drops(
    workers: Workers, pg_url: str
) -> None:
    """A free advisory lock alone does not make a node dead: a live node whose lock
    connection ends takes its lock again (it used to be declared dead at once, and
    its run was lost three times within a second and ended 'lost')."""
    with _client(pg_url) as client:
        _start_leader(workers, pg_url, client, ttl=1.0)  # maintenance every 0.5 s
        holder = _start(workers, pg_url, client, *HOLDER, ttl=30.0)  # beats every 10 s
        holder_id = _node_ids(client)[holder.proc.pid]
        client.add_schedule("pg:hold", "manual", id="hold", data={"seconds": 3}, retry=HOLD_RETRY)
        hold = client.run_now("hold")
        wait_for(lambda: _log_of(workers, "hold", "start"), 10, "the hold run to start")
        assert _terminate_backends(pg_url, _lock_holder(holder_id)) == 1
        wait_for(lambda: client.get_run(hold.id).done, 20, "the hold run to end")
        assert holder.proc.poll() is None
        run = client.get_run(hold.id)
        assert [a.status for a in run.attempts] == ["succeeded"], run.attempts
        assert len(_log_of(workers, "hold", "start")) == 1


def test_node_takes_its_lock_again_after_a_contended_reconnect(pg_url: str) -> None:
    """The lock connection drops while another session is queued for the lock (as a
    dead_nodes probe may be), so that session holds it for a while: the node takes it
    again once it is free and is not dead (it used to raise ConflictError from
    heartbeat, and never take the lock again)."""
    key = lock_key("node", "n1")
    store = open_store(pg_url)
    try:
        now = datetime.now(UTC)
        node = Node(
            id="n1", host=socket.gethostname(), pid=os.getpid(), started_at=now, heartbeat_at=now
        )
        store.register_node(node)
        with psycopg.connect(pg_url) as other:
            queued = threading.Thread(
                target=lambda: other.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            )
            queued.start()  # waits behind the node's session
            waiting = _node_lock_rows("n1", granted=False)
            wait_for(lambda: _count(pg_url, waiting) == 1, 10, "the other session to queue")
            assert _terminate_backends(pg_url, _lock_holder("n1")) == 1
            queued.join(10)  # the other session has the lock now
            with contextlib.suppress(StoreError):  # the engine retries those at its next beat
                store.heartbeat("n1", now, now + timedelta(seconds=30), [])
            time.sleep(1.5)  # longer than the node's own retries for its lock
        now = datetime.now(UTC)
        store.heartbeat("n1", now, now + timedelta(seconds=30), [])
        assert "n1" not in store.dead_nodes(now, 30)
    finally:
        store.close()


def test_status_drops_a_killed_node(workers: Workers, pg_url: str) -> None:
    """A SIGKILLed node leaves ``tickwork status`` once it is known dead (it used to
    stay listed for ever, as if alive)."""
    with _client(pg_url) as client:
        survivor = _start_leader(workers, pg_url, client, ttl=1.0)
        victim = _start(workers, pg_url, client, ttl=1.0)
        ids = _node_ids(client)
        victim.kill()
        wait_for(lambda: ids[victim.proc.pid] not in _node_ids(client).values(), 10, "death")
        listed = [n["id"] for n in cli_status(pg_url)["nodes"]]
        assert listed == [ids[survivor.proc.pid]]


def test_a_killed_node_leaves_the_listing_and_the_gauge_at_once(
    workers: Workers, pg_url: str
) -> None:
    """Its session lock is free once its process dies: it is neither listed nor counted
    alive from then on, though its heartbeat is within its 60 s lease and no node is up
    to mark it stopped (it used to be both, for up to the lease)."""
    with _client(pg_url) as client:
        victim = _start(workers, pg_url, client, ttl=60.0)
        store = open_store(pg_url)
        try:
            now = datetime.now(UTC)
            assert store.gauges(now, now - timedelta(seconds=60)).nodes == 1
            victim.kill()
            killed = time.monotonic()
            wait_for(lambda: client.nodes() == [], 10, "the killed node to leave the listing")
            assert time.monotonic() - killed < 5
            now = datetime.now(UTC)
            assert store.gauges(now, now - timedelta(seconds=60)).nodes == 0
            assert cli_status(pg_url)["nodes"] == []
            # Only its lock says so: its row is neither stopped nor silent for a lease.
            (row,) = store.list_nodes(include_stopped=True)
            assert row.stopped_at is None
            assert (now - row.heartbeat_at).total_seconds() < 30
        finally:
            store.close()
