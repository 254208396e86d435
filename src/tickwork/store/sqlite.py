"""The SQLite store: one database file shared by the threads of a process and by processes.

Durability and locking:

- WAL journal: readers never block the writer nor each other.
- Every write transaction starts with ``BEGIN IMMEDIATE``, which takes the file's write
  lock at once: write transactions are serial across every process on the file, so
  the fire loop, claims and leases are exact without row locks (no double fire, no
  double claim). Threads of one process also queue on an in-process lock first, so
  they never spin in SQLite's busy handler against each other.
- ``busy_timeout`` [10 s]: how long a writer waits for another process's transaction.
- ``synchronous=NORMAL`` by default: a commit survives the process crashing or being
  killed (SIGKILL) at any point; an operating-system crash or power loss may lose the
  last commits (never corrupts the file). ``?synchronous=full`` in the URL fsyncs
  every commit, so a commit also survives an OS crash, at a cost in commit rate.
- ``try_add_schedule`` commits a new schedule on the caller's thread (the event loop)
  only when nothing is in the way: the in-process lock is free, the file's write lock
  is taken at once (a busy timeout of 0) and the commit does not fsync. Anything else
  and it gives up without waiting, and the caller goes through a store thread.

Instants are INTEGER microseconds since the epoch (UTC). Connections are pooled: a
thread takes an idle one for the length of a transaction.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any, Final

from tickwork.errors import ConflictError, StoreError, StoreUnavailableError
from tickwork.limits import not_utf8
from tickwork.models import AuditEntry, FeedEvent, Schedule
from tickwork.store.base import EventWatch
from tickwork.store.base_reads import Revised
from tickwork.store.feed import DELETE_CHUNK, feed_event
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter
from tickwork.store.sql import (
    SqlStore,
    Tx,
    from_micros_or_none,
    micros,
    new_revision,
    utc_schedule,
)
from tickwork.store.sqlite_bulk import _MAX_PARAMETERS, SQLiteBulk
from tickwork.store.sqlite_errors import busy, full, open_failure, translate, translated
from tickwork.store.sqlite_file import FileIdentity, connect_uri
from tickwork.store.sqlite_nodes import NodeLock, SQLiteNodeLocks
from tickwork.store.sqlite_pages import KeptPages, file_version
from tickwork.store.sqlite_wal import BACKSTOP_FRAMES, Checkpointer
from tickwork.store.sqlite_watch import FileWatch
from tickwork.store.url import SQLiteURL

log = logging.getLogger("tickwork.store")

#: Commits ``try_add_schedule`` makes in a row before it leaves one to a store thread.
#: Its connection never checkpoints (that is file I/O, not for the event loop), nor
#: waits for the checkpointer (``sqlite_wal``), which takes the write lock when the
#: WAL is long.
INLINE_RUN: Final = 64


#: UPDATE … FROM (3.33) and the JSON functions built in (3.38).
MIN_SQLITE: Final = (3, 38, 0)
#: How long an open whose schema is behind waits for the write lock (seconds): the
#: process holding it may be migrating a large file. Said every MIGRATION_SAY_EVERY s.
MIGRATION_WAIT: Final = 300.0
MIGRATION_SAY_EVERY: Final = 10.0


def check_sqlite_version(version: tuple[int, int, int]) -> None:
    """Refuse, naming both versions, an SQLite library older than tickwork needs."""
    if version < MIN_SQLITE:
        raise StoreError(
            f"tickwork needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; this Python"
            f" uses SQLite {'.'.join(map(str, version))} (use a newer Python build, or"
            " PostgreSQL)"
        )


class _SQLiteTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except UnicodeEncodeError as exc:  # text SQLite cannot take: the caller's error
            raise not_utf8(exc) from None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        try:
            return self._conn.executemany(sql, rows).rowcount
        except UnicodeEncodeError as exc:
            raise not_utf8(exc) from None


class SQLiteStore(SQLiteNodeLocks, SQLiteBulk, SqlStore):
    """``Store`` on a SQLite file (``sqlite:///path.db``)."""

    dialect = "sqlite"
    #: WAL: a read waits for no writer, of this process or another (``ReadStore``).
    reads_inline = True

    _tag_filter = "EXISTS (SELECT 1 FROM json_each(schedules.tags) WHERE json_each.value = ?)"

    def __init__(self, url: SQLiteURL) -> None:
        super().__init__()
        self.url = url.display
        # Absolute from the start: every connection, opened whenever one is needed, must
        # open this file, even after a task changed the process's working directory.
        self._path = os.path.abspath(url.path)
        self._synchronous = url.synchronous
        self._busy_timeout = url.busy_timeout
        self._idle: list[sqlite3.Connection] = []
        self._every: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._pages = KeptPages()
        self._write_lock = threading.Lock()
        #: The lock files of the nodes registered through this store (``sqlite_nodes``).
        self._node_locks: dict[str, NodeLock] = {}
        self._node_locks_lock = threading.Lock()
        self._open = False
        #: Set by ``open`` until its first connection is made (``_new_connection``).
        self._may_create = False
        #: The files as opened: a write stops once one was deleted or replaced.
        self._files = FileIdentity(self._path)
        #: ``wait_for_change``'s connection, opened at its first wait.
        self._watch = FileWatch(self._path, self._busy_timeout, look_first=False)
        # try_add_schedule's connection: used only while holding _write_lock.
        self._inline: sqlite3.Connection | None = None
        self._inline_run = 0  # its commits since a pooled connection last committed
        #: Inline commits in a row before one goes through a pooled connection.
        self.inline_run_limit = INLINE_RUN
        #: Parameters per multi-row statement at most; lowered on open to what this
        #: SQLite build allows.
        self.max_parameters = _MAX_PARAMETERS
        #: Checkpoints the WAL off the commits' path (``sqlite_wal``).
        self.checkpointer = Checkpointer(self._connect_checkpointer, self._write_lock)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # -- connections -----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return self._new_connection(
            self._busy_timeout,
            512,
            "PRAGMA cache_size = -32000",
            f"PRAGMA wal_autocheckpoint = {BACKSTOP_FRAMES}",  # see sqlite_wal
        )

    def _new_connection(
        self, busy_timeout: float, cached_statements: int, *pragmas: str
    ) -> sqlite3.Connection:
        """A connection of this store (known to ``close``), with its settings. Only the
        first one ``open`` makes may create the file: a later one, on a file deleted
        meanwhile, would make a new empty database beside the old WAL, and delete that
        WAL (``sqlite_file``)."""
        create, self._may_create = self._may_create, False
        if self._files.noted:
            self._files.check(now=True)
        try:
            conn = sqlite3.connect(
                self._path if create else connect_uri(self._path),
                uri=not create,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # pooled: used by one thread at a time
                cached_statements=cached_statements,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA temp_store = MEMORY")
            for pragma in pragmas:
                conn.execute(pragma)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(open_failure(self._path, exc)) from exc
        with self._pool_lock:
            self._every.append(conn)
        return conn

    def _take(self) -> sqlite3.Connection:
        if not self._open:
            raise StoreError(f"store {self.url} is not open")
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # an error left it mid-transaction
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        with self._pool_lock:
            if self._open:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        # Threads of this process queue here; processes queue on BEGIN IMMEDIATE.
        with self._write_lock:
            self._files.check()  # a clock read, and now and then a look at the files
            conn = self._take()
            try:
                conn.execute("BEGIN IMMEDIATE")
                before = conn.total_changes
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")  # the checkpointer copies the pages (sqlite_wal)
                self._inline_run = 0
                self.checkpointer.wrote(conn.total_changes - before)
            except sqlite3.Error as exc:
                if full(exc):  # the WAL may be what fills the disk
                    self.checkpointer.reclaim()
                raise translated(exc, self._path) from exc
            finally:
                self._give_back(conn)

    def try_add_schedule(
        self, schedule: Schedule, audit: AuditEntry | None = None
    ) -> Schedule | None:
        """``add_schedule`` on this thread if it can be done without waiting; None when
        it cannot, and nothing was written: then call ``add_schedule`` on a store thread.

        For the event loop, whose thread must never wait on another thread's or
        process's lock: it gives up when another thread of this process is writing,
        when another process holds the file's write lock (busy timeout 0), when the
        commit would fsync (``synchronous=full|extra``), while the checkpointer waits
        for the write lock (``sqlite_wal``), and every ``INLINE_RUN``-th time in a row
        (``inline_run_limit``).
        Durable and exclusive exactly as ``add_schedule``: the same ``BEGIN IMMEDIATE``
        transaction, committed before it returns.
        """
        if (
            self._synchronous not in ("NORMAL", "OFF")
            or self._inline_run >= self.inline_run_limit
            or self.checkpointer.catching_up  # it waits for the write lock
        ):
            return None
        row = self._schedule_row(schedule)  # its errors are add_schedule's
        if not self._write_lock.acquire(blocking=False):
            return None
        try:
            if not self._open:
                raise StoreError(f"store {self.url} is not open")
            self._files.check()
            conn = self._inline if self._inline is not None else self._connect_inline()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if busy(exc):
                    return None
                raise
            try:
                before = conn.total_changes
                conn.execute(self._sql("insert_schedule"), (*row, new_revision()))
                if audit is not None:
                    conn.execute(self._sql("insert_audit"), self._audit_row(audit))
                conn.execute("COMMIT")
                self.checkpointer.wrote(conn.total_changes - before)
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and busy(exc):
                    return None  # rolled back: nothing was written
                raise
            self._inline_run += 1
        except sqlite3.IntegrityError:
            raise ConflictError(f"schedule {schedule.id!r} already exists") from None
        except sqlite3.Error as exc:
            raise translated(exc, self._path) from exc
        finally:
            self._write_lock.release()
        return utc_schedule(schedule)

    def _connect_inline(self) -> sqlite3.Connection:
        """A connection that never waits for a lock (SQLITE_BUSY at once) nor
        checkpoints (see ``try_add_schedule``)."""
        conn = self._new_connection(0, 64, "PRAGMA wal_autocheckpoint = 0")
        self._inline = conn
        return conn

    def _connect_checkpointer(self) -> sqlite3.Connection:
        """The checkpointer's connection (``sqlite_wal``): one that never checkpoints
        by itself."""
        return self._new_connection(self._busy_timeout, 4, "PRAGMA wal_autocheckpoint = 0")

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[Tx]:
        # A read transaction is one snapshot in WAL mode, and costs nothing extra.
        conn = self._take()
        try:
            conn.execute("BEGIN")
            yield _SQLiteTx(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise translated(exc, self._path) from exc
        finally:
            self._give_back(conn)

    # -- dialect ---------------------------------------------------------------------

    def _ts(self, dt: datetime | None) -> Any:
        return None if dt is None else micros(dt)

    _dt = staticmethod(from_micros_or_none)

    def _seconds(self, value: Any) -> float:
        # Integer microseconds: exactly the difference of the two instants read back.
        return timedelta(microseconds=int(value)).total_seconds()

    def _list(self, values: Collection[Any]) -> Any:
        return json.dumps(list(values))

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        if self._open:
            return
        check_sqlite_version(sqlite3.sqlite_version_info)
        self._open = True
        self._may_create = True
        try:
            with translate(self._path), self._connection() as conn:
                # Multi-row statements stay under this build's limit on parameters.
                self.max_parameters = min(
                    self.max_parameters, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                )
                self._check_ours(conn)
                mode = self._switch_to_wal(conn)
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot switch {self._path!r} to WAL (got {mode})")
            self.migrated_on_open = tuple(self.upgrade())
            self._files.note()  # the -wal and -shm files exist once a read was made
        except BaseException:
            self.close()
            raise

    def _switch_to_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``: persistent for the file, it needs a moment of
        exclusive access. SQLite does not apply busy_timeout to it when another process
        is opening a fresh file at the same moment ("database is locked" at once), so
        it is retried here for as long as busy_timeout allows."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def schedule_revisions(
        self,
        held: Mapping[str, int],
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        schedule_id: str | None = None,
    ) -> list[Revised]:
        """As on any store; a page read again while the file has not changed, every
        row of it held, is answered without a read (``sqlite_pages``)."""
        sql, params = self._revisions_query(filters, schedule_id)
        key = (sql, tuple(params))
        conn = self._take()
        try:
            version = file_version(conn)  # before the read: a commit after it shows
            page: Sequence[tuple[str, int]] | None = self._pages.get(conn, version, key)
            if page is not None and self._stale_query(held, page) is None:
                return [(sid, rev, None) for sid, rev in page]
            conn.execute("BEGIN")
            tx = _SQLiteTx(conn)
            page = tx.execute(sql, params)
            stale = self._stale_query(held, page)
            rows = tx.execute(*stale) if stale is not None else []
            conn.execute("COMMIT")
            self._pages.put(conn, version, key, page)
        except sqlite3.Error as exc:
            raise translated(exc, self._path) from exc
        finally:
            self._give_back(conn)
        if stale is None:
            return [(sid, rev, None) for sid, rev in page]
        return self._revised(held, page, rows)

    def close(self) -> None:
        self.release_node_locks()
        self.checkpointer.close()  # before its connection is closed
        # A fresh one, should the store be opened again.
        self.checkpointer = Checkpointer(self._connect_checkpointer, self._write_lock)
        with self._pool_lock:
            self._open = False
            conns, self._every, self._idle = self._every, [], []
            self._inline = None
        self._files = FileIdentity(self._path)  # an open again may create the file
        self._watch.close()
        self._pages.forget(conns)
        for conn in conns:
            with suppress(sqlite3.Error):  # closing never matters
                conn.close()

    def schema_version(self) -> int:
        with self._read() as tx:
            if not tx.execute(self._sql("migrations_table")):
                return 0
            rows = tx.execute(self._sql("schema_version"))
        return int(rows[0][0] or 0)

    def _check_ours(self, conn: sqlite3.Connection) -> None:
        """A file with tables but not tickwork's (``schedules`` and
        ``schema_migrations``) is another program's: refused before anything is
        written to it (its journal mode included), rather than given tickwork's tables
        beside its own. An empty file is taken."""
        tables = [str(row[0]) for row in conn.execute(self._sql("table_names"))]
        if not tables or {"schedules", "schema_migrations"} <= set(tables):
            return
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(
            f"SQLite database {self._path!r} is not a tickwork database: it has tables"
            f" of another program ({shown}); tickwork adds none to it. Give tickwork a"
            " file of its own (a new path is created)"
        )

    @contextmanager
    def _migrating(self) -> Iterator[Tx]:
        """A write transaction (BEGIN IMMEDIATE: one migrator at a time) begun as soon
        as the write lock is free, waited for up to ``MIGRATION_WAIT``, not just
        ``busy_timeout``: the process holding it is most likely migrating the file, which
        takes a while on a large one, and the migrations are found applied after it."""
        with self._write_lock:
            self._files.check()
            conn = self._take()
            try:
                self._begin_migrating(conn)
                before = conn.total_changes
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")
                self.checkpointer.wrote(conn.total_changes - before)
            except sqlite3.Error as exc:
                raise translated(exc, self._path) from exc
            finally:
                self._give_back(conn)

    def _begin_migrating(self, conn: sqlite3.Connection) -> None:
        started = time.monotonic()
        said = -MIGRATION_SAY_EVERY
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")  # waits busy_timeout itself
                return
            except sqlite3.OperationalError as exc:
                waited = time.monotonic() - started
                if not busy(exc) or waited >= MIGRATION_WAIT:
                    raise
            if waited - said >= MIGRATION_SAY_EVERY:
                said = waited
                log.warning(
                    "waiting for the write lock of %s to migrate its schema (%.0f s so far):"
                    " another process holds it (one migrating it, a long transaction, a"
                    " sqlite3 shell); giving up after %.0f s",
                    self._path,
                    waited,
                    MIGRATION_WAIT,
                )
            time.sleep(0.05)  # busy_timeout may be 0

    def _run_script(self, tx: Tx, script: str) -> None:
        for statement in _statements(script):
            tx.execute(statement)

    # -- the event feed --------------------------------------------------------------

    def read_events(self, after: int, limit: int = 500) -> list[FeedEvent]:
        with self._read() as tx:
            rows = tx.execute(self._sql("read_events"), (int(after), max(0, int(limit))))
        return [feed_event(row, self._dt) for row in rows]

    def last_event_id(self) -> int:
        with self._read() as tx:
            return int(tx.execute(self._sql("last_event_id"))[0][0])

    def watch_events(self) -> EventWatch:
        return FileWatch(self._path, self._busy_timeout, look_first=True)

    def delete_events_before(self, cutoff: datetime) -> int:
        t_cut = micros(cutoff)
        total = 0
        while True:  # in chunks: a write lock held briefly each time
            with self._write() as tx:
                done = tx.execute(self._sql("delete_events_before"), (t_cut, DELETE_CHUNK))
            total += len(done)
            if len(done) < DELETE_CHUNK:
                return total

    # -- change notification ---------------------------------------------------------

    def notify_change(self) -> None:
        """Nothing to do: every commit changes the file, which ``wait_for_change`` watches."""

    def wait_for_change(self, timeout: float) -> bool:
        """Poll the file's change counter (``PRAGMA data_version``, ``sqlite_watch``): it
        moves when any other connection commits, in this process or another, so commits
        made through this store wake it too."""
        return self._watch.wait(timeout)

    def interrupt_wait(self) -> None:
        self._watch.interrupt()


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise StoreError(f"incomplete statement in migration: {buffer.strip()[:80]}")
