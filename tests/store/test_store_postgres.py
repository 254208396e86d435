"""What only the PostgreSQL store does: NOTIFY wake-ups, advisory-lock liveness, reconnects."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

import psycopg
import pytest

from tickwork.errors import ConflictError, StoreUnavailableError
from tickwork.models import AttemptOutcome, Node
from tickwork.store import open_store, postgres_connections
from tickwork.store.postgres import PostgresStore, lock_key
from tickwork.store.postgres_connections import IDLE_IN_TRANSACTION
from tickwork.store.url import TCP_DEFAULTS

from .conftest import T0, at, every_second, make_run, make_schedule, worker

pytestmark = pytest.mark.postgres
T = TypeVar("T")


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresStore]:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def other(pg_url: str) -> Iterator[PostgresStore]:
    """A second store on the same database: another node, as far as PostgreSQL knows."""
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        yield store
    finally:
        store.close()


def _wake_latency(waiter: PostgresStore, act: object) -> float:
    """Seconds from ``act()`` to ``waiter.wait_for_change`` returning True."""
    assert waiter.wait_for_change(0.01) is False  # listening from now on
    woke: list[float] = []

    def wait() -> None:
        if waiter.wait_for_change(5):
            woke.append(time.monotonic())

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.05)  # the waiter is blocked in LISTEN
    started = time.monotonic()
    act()  # type: ignore[operator]
    thread.join(6)
    assert woke, "no wake-up"
    return woke[0] - started


def test_notify_change_wakes_another_node_within_100_ms(
    pg: PostgresStore, other: PostgresStore
) -> None:
    assert _wake_latency(pg, other.notify_change) < 0.1


def test_adding_work_notifies_inside_the_transaction(
    pg: PostgresStore, other: PostgresStore
) -> None:
    assert _wake_latency(pg, lambda: other.add_schedule(make_schedule("a"))) < 0.1
    assert _wake_latency(pg, lambda: other.insert_runs([make_run(None, T0)])) < 0.1
    assert _wake_latency(pg, lambda: other.set_paused(None, True, T0, lambda s, n: None)) < 0.1


def test_own_notifications_do_not_wake_the_same_store(pg: PostgresStore) -> None:
    pg.wait_for_change(0.01)
    pg.notify_change()
    pg.add_schedule(make_schedule("a"))
    assert pg.wait_for_change(0.3) is False


def test_interrupt_wait_returns_promptly(pg: PostgresStore) -> None:
    threading.Timer(0.1, pg.interrupt_wait).start()
    started = time.monotonic()
    assert pg.wait_for_change(10) is False
    assert time.monotonic() - started < 1


def _again(fn: Callable[..., T], *args: object) -> T:
    """Call once more if the first call hit a connection killed under it (allowed once)."""
    try:
        return fn(*args)
    except StoreUnavailableError:
        return fn(*args)


def _terminate_all(pg_url: str) -> int:
    """Kill every session on the test database but ours, as an operator would."""
    return _terminate_all_but(pg_url, keep=0)


def _terminate_all_but(pg_url: str, keep: int) -> int:
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s",
            (dbname, keep),
        ).fetchall()
    return len(rows)


def test_connections_killed_by_the_server_are_replaced(pg: PostgresStore, pg_url: str) -> None:
    pg.add_schedule(make_schedule("a"))
    assert pg.wait_for_change(0.01) is False  # a listening connection exists too
    assert _terminate_all(pg_url) >= 2
    try:
        first = pg.get_schedule("a")
    except StoreUnavailableError:
        first = None
    second = pg.get_schedule("a")
    assert second is not None and (first is None or first == second)
    # The fire loop and claims work on the new connections.
    assert len(pg.fire_due(at(0), every_second(), 10)) == 1
    assert len(pg.claim_runs("n1", at(0), at(30), 10, ["t"], {})) == 1
    # The listener notices its loss (a change may have been missed) and listens again.
    assert pg.wait_for_change(1) is True


def test_the_listener_recovers_after_its_connection_is_killed(
    pg: PostgresStore, other: PostgresStore, pg_url: str
) -> None:
    pg.wait_for_change(0.01)
    _terminate_all(pg_url)
    assert pg.wait_for_change(1) is True  # lost: maybe missed something
    with contextlib.suppress(StoreUnavailableError):
        other.notify_change()  # its connection was killed too: may fail once
    assert _wake_latency(pg, other.notify_change) < 0.1


def test_a_held_lock_outweighs_a_stale_heartbeat(
    pg: PostgresStore, other: PostgresStore, pg_url: str
) -> None:
    pg.register_node(Node("slow", "h", os.getpid(), T0, T0))  # beats rarely, lives
    assert other.dead_nodes(at(3600), 30) == []
    # A node of a closed store: its session ended, so its lock is free. The server
    # ends the session a moment after the client closed it (on a loaded machine, after
    # the next statement): until then the lock is held and the node alive.
    other.register_node(Node("closed", "h", 1, T0, T0))
    other.close()
    deadline = time.monotonic() + 10
    while _lock_holder_pids(pg_url, "closed"):
        assert time.monotonic() < deadline, "the closed store's session never ended"
        time.sleep(0.01)
    started = time.monotonic()
    assert pg.dead_nodes(at(3600), 30) == ["closed"]  # stale and free: no grace needed
    assert time.monotonic() - started < 0.5


def test_a_killed_node_is_dead_at_once(pg: PostgresStore) -> None:
    with worker("node", pg._conninfo, "w1") as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        assert [n.id for n in pg.list_nodes()] == ["w1"]
        assert pg.dead_nodes(at(1), 3600) == []  # heartbeat fresh, lock held
        # The id is taken while its process lives.
        with pytest.raises(ConflictError, match="w1"):
            pg.register_node(Node("w1", "h", 1, T0, T0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while pg.dead_nodes(at(1), 3600) != ["w1"]:
            assert time.monotonic() < deadline, "the dead node's lock was never released"
            time.sleep(0.02)
        dead_after = time.monotonic() - (deadline - 5)
    assert dead_after < 3  # LOCK_GRACE (1 s) after the lock is seen free
    # Asking did not take the lock for good: a restarted node can register again.
    pg.register_node(Node("w1", "h", 1, T0, T0))
    assert pg.dead_nodes(at(1), 3600) == []


def _lock_at(pg_url: str, node_id: str) -> datetime:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT lock_at FROM nodes WHERE id = %s", (node_id,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _lock_holder_pids(pg_url: str, node_id: str) -> list[int]:
    """Sessions holding the node's advisory lock (a bigint key is classid:objid)."""
    key = lock_key("node", node_id) & 0xFFFFFFFFFFFFFFFF
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return [r[0] for r in rows]


def test_a_live_node_whose_lock_connection_drops_takes_it_again_at_once(
    pg: PostgresStore, other: PostgresStore, pg_url: str
) -> None:
    pg.register_node(Node("n1", "h", os.getpid(), T0, T0))
    assert other.dead_nodes(at(1), 3600) == []
    before = _lock_at(pg_url, "n1")
    _terminate_all(pg_url)  # the node's lock connection among them
    # Its watcher takes the lock again within milliseconds: never taken for dead.
    assert _again(other.dead_nodes, at(1), 3600) == []
    # It records when it took it (written just after taking it: on a loaded machine
    # the watcher's thread may not have run that statement yet).
    deadline = time.monotonic() + 10
    while _lock_at(pg_url, "n1") <= before:
        assert time.monotonic() < deadline, "the node never recorded taking its lock again"
        time.sleep(0.02)
    _again(pg.heartbeat, "n1", at(2), at(32), [])
    pg.deregister_node("n1", at(3))
    assert other.dead_nodes(at(3), 0) == []  # stopped nodes are never dead


def test_the_node_lock_is_taken_again_even_when_contended(
    pg: PostgresStore, other: PostgresStore, pg_url: str
) -> None:
    pg.register_node(Node("n1", "h", os.getpid(), T0, T0))
    (holder,) = _lock_holder_pids(pg_url, "n1")
    dbname = pg_url.rsplit("/", 1)[1]
    admin = psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
    with admin, psycopg.connect(pg_url, autocommit=True) as checker:  # a dead_nodes check
        # End the node's lock session while it cannot reconnect, and take its lock
        # before it can: the watcher finds the server closed, then the lock held, and
        # must keep trying.
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        try:
            checker.execute("SELECT pg_terminate_backend(%s, 5000)", (holder,))
            checker.execute("BEGIN")
            checker.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("node", "n1"),))
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        time.sleep(0.3)
        assert _lock_holder_pids(pg_url, "n1") == [checker.info.backend_pid]
        _again(pg.heartbeat, "n1", at(1), at(31), [])  # never raises for the lock
        checker.execute("COMMIT")
    deadline = time.monotonic() + 3
    while _lock_holder_pids(pg_url, "n1") in ([], [holder]):
        assert time.monotonic() < deadline, "the node never took its lock again"
        time.sleep(0.02)
    assert other.dead_nodes(at(1), 3600) == []


def test_a_killed_leader_is_replaced_at_once(pg: PostgresStore) -> None:
    with worker("node", pg._conninfo, "w1") as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert pg.try_lead("w1", at(0), at(30))
        assert not pg.try_lead("me", at(1), at(31))  # alive, lease valid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 3
        while not pg.try_lead("me", at(1), at(31)):
            assert time.monotonic() < deadline, "the dead leader kept its lease"
            time.sleep(0.02)


def _within(seconds: float, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on a thread, failing if it has not returned within ``seconds``."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"{getattr(fn, '__name__', fn)} waited more than {seconds} s"
    return out[0]


def test_try_lead_does_not_wait_for_a_session_holding_the_lease(
    pg: PostgresStore, pg_url: str
) -> None:
    """A node frozen (or cut off) inside ``try_lead`` keeps the lease row locked until
    its session ends: hours, on a partition the server has not noticed. Before, every
    other node's ``try_lead`` waited for it, and with it the rest of the maintenance
    pass, so no node took over the runs of dead nodes. Now it is not the leader this
    round (fail closed) and the pass goes on."""
    assert pg.try_lead("frozen", at(0), at(30))
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT * FROM leader FOR UPDATE")
        assert _within(3, pg.try_lead, "me", at(40), at(70)) is False  # lapsed, but held
        holder.rollback()
    assert pg.try_lead("me", at(40), at(70))


def test_try_lead_does_not_wait_for_a_session_creating_the_lease(
    pg: PostgresStore, pg_url: str
) -> None:
    """The same while the first lease is being inserted by a session that froze."""
    with psycopg.connect(pg_url) as holder:
        holder.execute("INSERT INTO leader (id, node_id, lease_until) VALUES (1, 'frozen', now())")
        assert _within(3, pg.try_lead, "me", at(40), at(70)) is False
        holder.rollback()
    assert pg.try_lead("me", at(40), at(70))


def _setting(store: PostgresStore, name: str) -> str:
    with store._connection() as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def test_a_session_idle_in_a_transaction_is_ended_by_the_server(
    pg: PostgresStore, pg_url: str
) -> None:
    """Unless the server, the role, the database or the URL set it already."""
    assert _setting(pg, "idle_in_transaction_session_timeout") == IDLE_IN_TRANSACTION
    sep = "&" if "?" in pg_url else "?"
    own = open_store(f"{pg_url}{sep}options=-c%20idle_in_transaction_session_timeout%3D0")
    assert isinstance(own, PostgresStore)
    try:
        assert _setting(own, "idle_in_transaction_session_timeout") == "0"
    finally:
        own.close()


def test_a_frozen_node_s_transaction_does_not_hold_up_the_takeover(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node frozen (or cut off) in the middle of its heartbeat keeps its row of
    ``nodes`` locked; before, another node's ``recover_lost`` waited for it for as long
    as the session lived (hours, on a partition), and took over no dead node's runs
    meanwhile. The server now ends such a session (after 1 s here, not 20) and the
    takeover goes on; the frozen node, when it wakes, has lost a connection."""
    monkeypatch.setattr(postgres_connections, "IDLE_IN_TRANSACTION", "1s")
    frozen, taker = open_store(pg_url), open_store(pg_url)
    assert isinstance(frozen, PostgresStore) and isinstance(taker, PostgresStore)
    try:
        frozen.register_node(Node("frozen", "h", 1, T0, T0))
        taker.insert_runs([make_run(None, T0)])
        (run,) = taker.claim_runs("dead", T0, at(30), 1, ["t"], {})
        with frozen._connection() as conn:
            conn.execute("BEGIN")
            conn.execute("UPDATE nodes SET heartbeat_at = now() WHERE id = 'frozen'")
            # ... and the node freezes here, in its transaction.
            recovered = _within(
                10, taker.recover_lost, at(60), ["frozen", "dead"], lambda r, n: None
            )
            assert [r.id for r in recovered] == [run.id]
            with pytest.raises(StoreUnavailableError), frozen._translate():
                conn.execute("COMMIT")  # a connection lost (retried), not an end refused
    finally:
        frozen.close()
        taker.close()


def test_percentiles_are_computed_by_postgres(pg: PostgresStore) -> None:
    pg.insert_runs([make_run(None, T0) for _ in range(4)])
    for i, run in enumerate(pg.claim_runs("n1", T0, at(30), 10, ["t"], {})):
        pg.finish_attempts([(run.id, "n1", 1, AttemptOutcome("succeeded"))], at(i + 1))
    (stats,) = pg.task_stats()
    assert stats.p50_duration == pytest.approx(2.5)
    assert stats.p95_duration == pytest.approx(3.85)


def test_a_claim_skips_runs_another_claimer_holds(pg: PostgresStore, pg_url: str) -> None:
    """Concurrent claimers take different runs instead of queueing behind the first's
    locks or coming back empty: what lets throughput grow with nodes."""
    runs = [make_run(None, at(i)) for i in range(6)]
    pg.insert_runs(runs)
    best = sorted(runs, key=lambda r: (r.due_at, r.id))
    with psycopg.connect(pg_url) as holder:  # a transaction in progress on another node
        holder.execute(
            "SELECT id FROM runs WHERE id = ANY(%s) FOR UPDATE", ([r.id for r in best[:3]],)
        )
        started = time.monotonic()
        got = pg.claim_runs("n2", at(10), at(40), 3, ["t"], {})
        assert time.monotonic() - started < 2  # did not wait for the holder
        assert [r.id for r in got] == [r.id for r in best[3:]]
        holder.rollback()
    assert [r.id for r in pg.claim_runs("n1", at(10), at(40), 3, ["t"], {})] == [
        r.id for r in best[:3]
    ]


def _effective(conn: psycopg.Connection[object]) -> tuple[dict[str, str], dict[str, int]]:
    """The connection's libpq settings named in ``TCP_DEFAULTS``, and what its socket
    really carries."""
    info = {o.keyword.decode(): (o.val or b"").decode() for o in conn.pgconn.info}
    sock = socket.socket(fileno=os.dup(conn.pgconn.socket))  # closing it closes the dup
    try:
        tcp = socket.IPPROTO_TCP
        carried = {
            "keepalives": int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0),
            "keepalives_idle": sock.getsockopt(tcp, socket.TCP_KEEPIDLE),
            "keepalives_interval": sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
            "keepalives_count": sock.getsockopt(tcp, socket.TCP_KEEPCNT),
            "tcp_user_timeout": sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
        }
    finally:
        sock.close()
    return {name: info[name] for name in TCP_DEFAULTS}, carried


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux socket options")
def test_connections_notice_a_silent_peer_within_the_lease(pg: PostgresStore) -> None:
    """Keepalives and a user timeout on every connection (pooled, listening): a peer cut
    off by a partition is noticed in seconds (before: when the kernel gave up, minutes)."""
    expected = {name: int(value) for name, value in TCP_DEFAULTS.items()}
    with pg._connection() as conn:
        assert _effective(conn) == (dict(TCP_DEFAULTS), expected)
    listen = pg._connect()
    try:
        assert _effective(listen) == (dict(TCP_DEFAULTS), expected)
    finally:
        listen.close()
    # Down within the default lease: idle, then every probe unanswered.
    assert (
        expected["keepalives_idle"] + expected["keepalives_interval"] * expected["keepalives_count"]
        < 30
    )
    assert expected["tcp_user_timeout"] < 30_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux socket options")
def test_the_url_s_own_tcp_settings_win(pg_url: str) -> None:
    store = open_store(pg_url + "?keepalives_idle=42&tcp_user_timeout=0")
    assert isinstance(store, PostgresStore)
    try:
        with store._connection() as conn:
            settings, carried = _effective(conn)
    finally:
        store.close()
    assert settings == {**TCP_DEFAULTS, "keepalives_idle": "42", "tcp_user_timeout": "0"}
    assert carried["keepalives_idle"] == 42 and carried["tcp_user_timeout"] == 0
    assert carried["keepalives_count"] == int(TCP_DEFAULTS["keepalives_count"])
