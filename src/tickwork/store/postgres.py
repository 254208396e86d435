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
  restart frees every lock; nodes take theirs again at their next heartbeat)
  (store/postgres_nodes.py).
- Leadership: one ``leader`` row, taken by an upsert that only succeeds when the lease
  lapsed or is ours; any error means "not leader".
- Wake-ups: transactions that add work send ``NOTIFY tickwork`` (delivered at commit);
  ``wait_for_change`` listens on a dedicated autocommit connection
  (store/postgres_listen.py, with the event feed).
- Faults: connections come from a ``psycopg_pool`` pool that checks each one before
  lending it, so a connection killed by a restart or ``pg_terminate_backend`` is
  replaced; driver errors become ``StoreUnavailableError`` (connection trouble,
  serialization failures, deadlocks: retry later) or ``StoreError``
  (store/postgres_connections.py).
- The REST API's hot reads (``schedule_revisions_async``, ``get_token_async``) are
  awaited on the caller's event loop, on connections of their own, those asked for
  while others were on their way going out together (store/postgres_reads.py): no
  hop to a store thread, a round trip shared by many requests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from tickwork.errors import ConflictError
from tickwork.models import ApiToken, AuditEntry, DashboardSession, Schedule
from tickwork.store.base_reads import Revised
from tickwork.store.named_sql import fill
from tickwork.store.postgres_connections import (
    RECONNECT_ROUND,
    _configure,
    _pg,
    _PgTx,
    _reconnect_again,
    pinned_conninfo,
)
from tickwork.store.postgres_listen import CHANNEL, Listener, PgListen
from tickwork.store.postgres_nodes import PgNodeLocks, lock_key
from tickwork.store.postgres_reads import AsyncReads, Batches, fetch
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter
from tickwork.store.sql import (
    SqlStore,
    Tx,
    new_revision,
    utc,
    utc_schedule,
)
from tickwork.store.url import PostgresURL

#: Connections for the reads awaited on the event loop. Two: while both are on their
#: way, the reads asked for gather into the next round trip (``Batches``); more
#: connections sent smaller batches, at more CPU per read (50 clients on loopback:
#: four served gets at half the requests/s of two, one at two thirds).
ASYNC_READERS = 2


_MIGRATION_KEY = lock_key("migrations", "")


class PostgresStore(PgListen, PgNodeLocks, SqlStore):
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
        #: What connections are made with: ``_conninfo`` and, once the store is open,
        #: the options its first connection took from elsewhere (``pinned_conninfo``).
        self._connect_with = url.conninfo
        self._settings = url
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._token = uuid.uuid4().hex  # tells our own notifications from others'
        self._changes = Listener(self._connect, CHANNEL, ignore=self._token)
        self._node_locks = {}
        self._node_lock = threading.Lock()
        self._last_used: dict[int, float] = {}
        self._new_async_reads()

    def _new_async_reads(self) -> None:
        self._async_reads = AsyncReads(
            self._connect_with,
            min(ASYNC_READERS, self._settings.pool_max),
            self._settings.pool_timeout,
            self._translate,
        )
        self._batches = Batches(self._async_reads, _pg(self._sql("schedule_revisions_of")))

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # Connections: store/postgres_connections.py; notices and the event feed:
    # store/postgres_listen.py; nodes' locks: store/postgres_nodes.py.

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

    async def get_session_async(self, session_id: str) -> tuple[DashboardSession, str] | None:
        rows = await self._batches.fetch(_pg(self._sql("session_with_secret")), (session_id,))
        return self._session_found(rows)

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        if self._pool is not None:
            return
        # One plain connection first: its error says why the database is unreachable
        # (a pool would only time out).
        probe = self._connect()
        try:
            self._connect_with = pinned_conninfo(self._conninfo, probe)
        finally:
            probe.close()
        self._new_async_reads()
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._connect_with,
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
            self.migrated_on_open = tuple(self.upgrade())
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
        self._changes.close()
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
