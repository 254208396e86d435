"""The PostgreSQL store: many nodes on one database, coordinated by PostgreSQL itself.

How nodes share the work without waiting on one another:

- Firing: ``fire_due`` selects due schedules ``FOR UPDATE SKIP LOCKED``; a schedule
  another node is firing is skipped, not waited for. The unique key on
  (schedule_id, scheduled_for) with ``ON CONFLICT DO NOTHING`` is the last line of
  defence against a double fire.
- Claiming: candidates are selected ``FOR UPDATE OF r SKIP LOCKED``, so two nodes never
  take the same run. Limits (a schedule's running runs under its overlap policy, a
  task's running runs under its concurrency) are counted over every node, and the
  count must not race: before counting, the claimer locks the schedule rows of the
  limited candidates (``FOR NO KEY UPDATE SKIP LOCKED``) and takes a transaction-level
  advisory lock per limited task (``pg_try_advisory_xact_lock``). Only a transaction
  holding those locks can make a run of that schedule or task ``running``, and it
  holds them until it commits, so the count (taken in a later statement, which in
  READ COMMITTED sees every commit made before the locks were granted) is exact. A
  schedule or task locked by another claimer is skipped for this round, like a
  locked row.
- Leases and recovery: running runs carry ``lease_until``; ``recover_lost`` locks the
  lapsed ones ``SKIP LOCKED``; ``finish_attempts`` guards each end by (status, node, attempt).
- Dead nodes: ``register_node`` takes a session-level advisory lock on a connection
  kept open for the node's life. When the process dies, PostgreSQL ends its session
  and frees the lock, so ``dead_nodes`` knows at once (``pg_try_advisory_xact_lock``
  succeeds). Locks are only trusted when taken since the server last started (a
  restart frees every lock; nodes take theirs again at their next heartbeat).
- Leadership: one ``leader`` row, taken by an upsert that only succeeds when the lease
  lapsed or is ours; any error means "not leader".
- Wake-ups: transactions that add work send ``NOTIFY tickwork`` (delivered at commit);
  ``wait_for_change`` listens on a dedicated autocommit connection.
- Faults: connections come from a ``psycopg_pool`` pool that checks each one before
  lending it, so a connection killed by a restart or ``pg_terminate_backend`` is
  replaced; driver errors become ``StoreUnavailableError`` (connection trouble,
  serialization failures, deadlocks: retry later) or ``StoreError``.
- The REST API's hot reads (``schedule_revisions_async``, ``get_token_async``) are
  awaited on the caller's event loop, on connections of their own, those asked for
  while others were on their way going out together (store/postgres_reads.py): no
  hop to a store thread, a round trip shared by many requests.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tickwork.errors import ConflictError, StoreError, StoreUnavailableError, ValidationError
from tickwork.limits import not_utf8
from tickwork.models import ApiToken, AuditEntry, FeedEvent, Schedule
from tickwork.store.base import EventWatch
from tickwork.store.base_reads import Revised
from tickwork.store.feed import DELETE_CHUNK, feed_event
from tickwork.store.named_sql import fill
from tickwork.store.postgres_nodes import PgNodeLocks, lock_key
from tickwork.store.postgres_reads import SESSION_UTC, AsyncReads, Batches, fetch, text_json
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter
from tickwork.store.sql import (
    SqlStore,
    Tx,
    _aware,
    new_revision,
    utc,
    utc_schedule,
)
from tickwork.store.url import PostgresURL

#: The channel of change notices (as the named statements ``notify_change`` and
#: ``add_schedule_notify`` write it).
CHANNEL = "tickwork"
#: Notified by the feed's commit trigger with the transaction's last event id.
EVENTS_CHANNEL = "tickwork_events"
#: A pooled connection idle longer than this (seconds) is checked before use.
IDLE_CHECK = 0.5
#: Seconds a call that met a broken connection waits for the pool to replace it.
REFILL_WAIT = 1.0
#: Seconds the pool keeps trying to open a connection (1 s, then 2 s apart) before it
#: starts again from a 1 s delay (``_reconnect_again``): its own delay doubles without
#: bound, so after a 40 s outage the next try came up to 25 s after the server was back.
RECONNECT_ROUND = 5.0
#: Connections for the reads awaited on the event loop. Two: while both are on their
#: way, the reads asked for gather into the next round trip (``Batches``); more
#: connections sent smaller batches, at more CPU per read (50 clients on loopback:
#: four served gets at half the requests/s of two, one at two thirds).
ASYNC_READERS = 2
#: How long ``wait_for_change`` blocks on the socket before looking at ``interrupt_wait``.
WAIT_SLICE = 0.1


_MIGRATION_KEY = lock_key("migrations", "")


@lru_cache(maxsize=1024)
def _pg(sql: str) -> str:
    """Our ``?`` placeholders as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


def _await_refill(pool: ConnectionPool[psycopg.Connection[Any]], timeout: float) -> None:
    """Wait up to ``timeout`` for ``pool`` to hold ``min_size`` idle connections again.

    Not ``ConnectionPool.wait``: it closes the pool when the time runs out, so a
    database down for longer than ``timeout`` left the node with a closed pool for good.
    """
    deadline = time.monotonic() + timeout
    while not pool.closed and time.monotonic() < deadline:
        stats = pool.get_stats()
        if stats["pool_available"] >= stats["pool_min"]:
            return
        time.sleep(0.01)


def _reconnect_again(pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
    """A round of tries to open a connection failed: start another at once.

    ``check`` lets the pool grow when it holds no connection, and the new round tries
    at once, then 1 s and 2 s later: a node tries every second or two however long the
    database was away, and works again within about two seconds of its return.
    """
    if not pool.closed:
        pool.check()


class _PgTx:
    __slots__ = ("_cur",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._cur = conn.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._cur
        cur.execute(_pg(sql), params)
        return cur.fetchall() if cur.description is not None else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        # Pipelined by psycopg: one round trip for the lot, faster than one statement
        # with arrays (dumping big arrays is slow in Python).
        self._cur.executemany(_pg(sql), rows)
        return self._cur.rowcount

    def script(self, sql: str) -> None:
        """Several statements, no parameters (migrations)."""
        self._cur.execute(sql.encode())


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SESSION_UTC)
    text_json(conn)


class PostgresStore(PgNodeLocks, SqlStore):
    """``Store`` on PostgreSQL (``postgresql://user:password@host:5432/db``)."""

    dialect = "postgres"

    _claim_checks_again = True
    # The dashboard's activity buckets and durations (see store/sql_dashboard.py).
    _bucket_unit = 1
    _duration_unit = 1.0
    _tag_filter = "tags @> jsonb_build_array(?::text)"

    def __init__(self, url: PostgresURL) -> None:
        super().__init__()
        self.url = url.display
        self._conninfo = url.conninfo
        self._settings = url
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._token = uuid.uuid4().hex  # tells our own notifications from others'
        self._listen: psycopg.Connection[Any] | None = None
        #: Set when listening again failed: notifications go unheard until it succeeds.
        self._deaf = False
        self._interrupt = threading.Event()
        self._node_locks = {}
        self._node_lock = threading.Lock()
        self._last_used: dict[int, float] = {}
        self._new_async_reads()

    def _new_async_reads(self) -> None:
        self._async_reads = AsyncReads(
            self._conninfo,
            min(ASYNC_READERS, self._settings.pool_max),
            self._settings.pool_timeout,
            self._translate,
        )
        self._batches = Batches(self._async_reads, _pg(self._sql("schedule_revisions_of")))

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # -- connections -----------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        with self._translate():
            conn = psycopg.connect(self._conninfo, autocommit=True)
        _configure(conn)
        return conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn psycopg's errors into tickwork's, without ever showing a password."""
        try:
            yield
        except psycopg.errors.IntegrityError as exc:
            raise ConflictError(self._clean(exc)) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailableError(f"PostgreSQL {self.url}: {self._clean(exc)}") from exc
        except psycopg.DataError as exc:
            # A value the database cannot hold (a NUL character in text, a number out of
            # range): bad input, named as such, not a failing database.
            raise ValidationError(f"a value PostgreSQL cannot store: {self._clean(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL {self.url}: {self._clean(exc)}") from exc
        except UnicodeEncodeError as exc:
            raise not_utf8(exc) from None

    def _clean(self, exc: BaseException) -> str:
        # One line: libpq's messages add hints on lines of their own.
        text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        text = text or type(exc).__name__
        password = psycopg.conninfo.conninfo_to_dict(self._conninfo).get("password")
        return text.replace(str(password), "***") if password else text

    def _pool_or_fail(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is None:
            raise StoreError(f"store {self.url} is not open")
        return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit), with errors translated.

        A connection idle for a while is checked before it is lent (one round trip),
        so connections dropped while idle (a server restart, ``pg_terminate_backend``)
        are replaced without the caller noticing. Busy connections are not checked:
        if one breaks, this call fails with ``StoreUnavailableError``, the pool drops
        it and checks the idle ones, and the next call works.
        """
        pool = self._pool_or_fail()
        try:
            with self._translate():
                conn = self._healthy(pool)
                try:
                    with conn:
                        yield conn
                finally:
                    if len(self._last_used) > 4 * self._settings.pool_max + 64:
                        self._last_used.clear()  # ids of connections long gone
                    self._last_used[id(conn)] = time.monotonic()
                    pool.putconn(conn)
        except StoreUnavailableError:
            # The broken connection is discarded, and the pool replaces it. Wait (briefly)
            # for the replacement: a call made before it is ready made the pool open one
            # more (as did ``pool.check()``, replacing the same connections again), and
            # each killed connection grew the pool by one, up to pool_max, for good.
            # Idle connections killed with it are checked before use (``_healthy``).
            _await_refill(pool, min(REFILL_WAIT, self._settings.pool_timeout))
            raise

    def _healthy(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
        for _ in range(self._settings.pool_max + 1):
            conn = pool.getconn()
            if time.monotonic() - self._last_used.get(id(conn), 0.0) < IDLE_CHECK:
                return conn
            try:
                ConnectionPool.check_connection(conn)
                return conn
            except psycopg.Error:
                conn.close()
                pool.putconn(conn)  # the pool discards it and opens a new one
        return pool.getconn()

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            yield _PgTx(conn)

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[Tx]:
        with self._connection() as conn:
            if not snapshot:  # each statement on its own: no BEGIN/COMMIT round trips
                yield _PgTx(conn)
                return
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield _PgTx(conn)
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _statement(self) -> Iterator[Tx]:
        """One statement in autocommit: atomic by itself, one round trip."""
        with self._connection() as conn:
            yield _PgTx(conn)

    # -- dialect ---------------------------------------------------------------------

    def _ts(self, dt: datetime | None) -> Any:
        return utc(dt)

    def _dt(self, value: Any) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def _seconds(self, value: Any) -> float:
        # An interval, read as a timedelta: as EXTRACT(EPOCH ...)::float8 would give it.
        return float(value.total_seconds())

    def _list(self, values: Collection[Any]) -> Any:
        return list(values)

    def _notify_tx(self, tx: Tx) -> None:
        tx.execute(self._sql("notify_change"), (self._token,))

    def _lock_claim(
        self, tx: Tx, schedule_ids: list[str], tasks: list[str]
    ) -> tuple[set[str], set[str]]:
        schedules: set[str] = set()
        if schedule_ids:
            schedules = {
                row[0] for row in tx.execute(self._sql("lock_claimed_schedules"), (schedule_ids,))
            }
        locked_tasks: set[str] = set()
        for task in tasks:  # try-locks never wait, so their order cannot deadlock
            if tx.execute(self._sql("try_lock_task"), (lock_key("task", task),))[0][0]:
                locked_tasks.add(task)
        return schedules, locked_tasks

    def _store_fired(self, tx: Tx, updates: Sequence[Sequence[Any]]) -> None:
        if updates:
            columns = [list(col) for col in zip(*updates, strict=True)]
            tx.execute(self._sql("store_fired"), columns)

    def _duration_percentiles(
        self, tx: Tx, where: str, params: Sequence[Any]
    ) -> dict[str, tuple[float | None, float | None]]:
        rows = tx.execute(fill(self._sql("scanned_duration_percentiles"), where=where), params)
        return {task: (p50, p95) for task, p50, p95 in rows}

    # -- hot paths in one statement ---------------------------------------------------
    # The SQL core's versions take several statements inside BEGIN/COMMIT: free on
    # SQLite, a round trip each here. These do the same in one autocommit statement.

    def add_schedule(self, schedule: Schedule, audit: AuditEntry | None = None) -> Schedule:
        row = self._schedule_row(schedule)
        try:
            with self._statement() as tx:
                if audit is None:
                    tx.execute(
                        self._sql("add_schedule_notify"), (*row, new_revision(), self._token)
                    )
                else:
                    tx.execute(
                        self._sql("add_audited_schedule_notify"),
                        (*row, new_revision(), *self._audit_row(audit), self._token),
                    )
        except ConflictError:
            raise ConflictError(f"schedule {schedule.id!r} already exists") from None
        return utc_schedule(schedule)

    # -- reads on the event loop (see store/postgres_reads.py) ------------------------

    def reads_async(self) -> bool:
        return self._pool is not None and self._async_reads.usable()

    async def schedule_revisions_async(
        self,
        held: Mapping[str, int],
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        schedule_id: str | None = None,
    ) -> list[Revised]:
        # The statements that read the page go out with those of other requests made
        # meanwhile (``Batches``); rows read again, rarely (after a write), on their own.
        page: list[tuple[str, int]]
        if schedule_id is not None:
            page = await self._batches.by_id(schedule_id)
        else:
            sql, params = self._revisions_query(filters)
            page = await self._batches.fetch(_pg(sql), params)
        stale = self._stale_query(held, page)
        if stale is None:
            return [(sid, rev, None) for sid, rev in page]
        stale_sql, stale_params = _pg(stale[0]), stale[1]
        rows = await self._async_reads.read(lambda conn: fetch(conn, stale_sql, stale_params))
        return self._revised(held, page, rows)

    async def get_token_async(self, token_id: str) -> tuple[ApiToken, str] | None:
        rows = await self._batches.fetch(_pg(self._sql("token_with_secret")), (token_id,))
        return self._token_found(rows)

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        if self._pool is not None:
            return
        # One plain connection first: its error says why the database is unreachable
        # (a pool would only time out).
        probe = self._connect()
        probe.close()
        self._new_async_reads()
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._conninfo,
            min_size=self._settings.pool_min,
            max_size=self._settings.pool_max,
            kwargs={"autocommit": True},
            configure=_configure,
            timeout=self._settings.pool_timeout,
            reconnect_timeout=RECONNECT_ROUND,
            reconnect_failed=_reconnect_again,
            open=False,
            name="tickwork",
        )
        with self._translate():
            pool.open(wait=True, timeout=self._settings.pool_timeout)
        self._pool = pool
        try:
            self.upgrade()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        pool, self._pool = self._pool, None
        self._async_reads.close()
        with self._node_lock:
            locks = list(self._node_locks.values())
            self._node_locks.clear()
        for held in locks:
            held.close()
        conns = []
        if self._listen is not None:
            conns.append(self._listen)
            self._listen = None
        for conn in conns:
            with suppress(Exception):
                conn.close()
        if pool is not None:
            pool.close()

    def schema_version(self) -> int:
        with self._read() as tx:
            if tx.execute(self._sql("migrations_table"))[0][0] is None:
                return 0
            return int(tx.execute(self._sql("schema_version"))[0][0] or 0)

    @contextmanager
    def _migrating(self) -> Iterator[Tx]:
        with self._connection() as conn, conn.transaction():
            tx = _PgTx(conn)
            # One migrator at a time, across every process starting now.
            tx.execute(self._sql("lock_migrations"), (_MIGRATION_KEY,))
            yield tx

    def _run_script(self, tx: Tx, script: str) -> None:
        assert isinstance(tx, _PgTx)
        tx.script(script)

    # -- the event feed --------------------------------------------------------------

    def read_events(self, after: int, limit: int = 500) -> list[FeedEvent]:
        # Positions: the transaction's block (handed out at commit, in commit order)
        # plus the event's rank within its transaction.
        limit = max(0, int(limit))
        with self._read() as tx:
            rows = tx.execute(self._sql("read_events"), (int(after), limit, int(after), limit))
        return [feed_event(row, self._dt) for row in rows]

    def last_event_id(self) -> int:
        with self._read() as tx:
            return int(tx.execute(self._sql("last_event_id"))[0][0])

    def watch_events(self) -> EventWatch:
        return _ListenWatch(self)

    def delete_events_before(self, cutoff: datetime) -> int:
        total = 0
        while True:  # in chunks, each its own transaction
            with self._write() as tx:
                xids = tx.execute(
                    self._sql("delete_event_txns_before"), (_aware(cutoff), DELETE_CHUNK)
                )
                if xids:
                    done = tx.execute(
                        self._sql("delete_events_of_txns"), ([str(x[0]) for x in xids],)
                    )
                    total += len(done)
            if len(xids) < DELETE_CHUNK:
                return total

    # -- change notification ---------------------------------------------------------

    def notify_change(self) -> None:
        with self._statement() as tx:
            tx.execute(self._sql("notify_change"), (self._token,))

    def wait_for_change(self, timeout: float) -> bool:
        """Wait on ``LISTEN tickwork`` for another store's notification.

        Notifications sent through this store are ignored. When the listening
        connection is lost, returns True (a change may have been missed) and listens
        again on the next call; while the server cannot be reached it waits out the
        timeout and returns False, and once it listens again it returns True: changes
        made meanwhile were not heard, and a node backing off learns the database is back.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        if self._listen is None:
            try:
                conn = self._connect()
                conn.execute(f"LISTEN {CHANNEL}")
            except (StoreError, psycopg.Error):
                self._deaf = True
                self._interrupt.wait(max(0.0, deadline - time.monotonic()))
                self._interrupt.clear()
                return False
            self._listen = conn
            if self._deaf:
                self._deaf = False
                return True
        conn = self._listen
        try:
            while True:
                if self._interrupt.is_set():
                    self._interrupt.clear()
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                seen = False
                for note in conn.notifies(timeout=min(WAIT_SLICE, remaining)):
                    if note.payload != self._token:
                        seen = True
                        break
                if seen:
                    # Swallow what already arrived: one wake-up covers them all.
                    for _ in conn.notifies(timeout=0.0):
                        pass
                    return True
        except psycopg.Error:
            with suppress(Exception):
                conn.close()
            self._listen = None
            return True

    def interrupt_wait(self) -> None:
        self._interrupt.set()


class _ListenWatch(EventWatch):
    """``LISTEN tickwork_events`` on a connection of its own. The feed's commit trigger
    notifies every transaction that wrote events, delivered once it has committed."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._conn: psycopg.Connection[Any] | None = None
        self._interrupt = threading.Event()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        if self._conn is None:
            try:
                conn = self._store._connect()
                conn.execute(f"LISTEN {EVENTS_CHANNEL}")
            except (StoreError, psycopg.Error):
                self._interrupt.wait(max(0.0, deadline - time.monotonic()))
                self._interrupt.clear()
                return False
            self._conn = conn
            return True  # events may have been written before the LISTEN
        conn = self._conn
        try:
            while True:
                if self._interrupt.is_set():
                    self._interrupt.clear()
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                seen = False
                for _ in conn.notifies(timeout=min(WAIT_SLICE, remaining)):
                    seen = True
                    break
                if seen:
                    for _ in conn.notifies(timeout=0.0):  # one wake-up covers them all
                        pass
                    return True
        except psycopg.Error:
            self.close()
            return True  # something may have been missed while the connection broke

    def interrupt(self) -> None:
        self._interrupt.set()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()
