"""PostgreSQL's connections: the pool, the transactions on its connections, and psycopg's
errors turned into tickwork's (``PostgresStore``, store/postgres.py, is made of this,
store/postgres_listen.py and store/postgres_nodes.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Final

import psycopg
from psycopg_pool import ConnectionPool

from tickwork.errors import ConflictError, StoreError, StoreUnavailableError, ValidationError
from tickwork.limits import not_utf8
from tickwork.store.named_sql import queries_for
from tickwork.store.postgres_reads import SESSION_UTC, text_json
from tickwork.store.sql import SqlCore, Tx
from tickwork.store.url import PostgresURL

#: A pooled connection idle longer than this (seconds) is checked before use.
IDLE_CHECK = 0.5
#: Seconds a call that met a broken connection waits for the pool to replace it.
REFILL_WAIT = 1.0
#: Seconds the pool keeps trying to open a connection (1 s, then 2 s apart) before it
#: starts again from a 1 s delay (``_reconnect_again``): its own delay doubles without
#: bound, so after a 40 s outage the next try came up to 25 s after the server was back.
RECONNECT_ROUND = 5.0
#: How long the server lets a session of the pool sit idle inside a transaction before
#: it ends the session, unless set elsewhere (the server's configuration, the role, the
#: database, the URL's ``options``). A node frozen or cut off in the middle of a
#: transaction otherwise keeps its row locks until the server notices its session is
#: gone (hours, on a partition), holding up other nodes' writes to those rows, the
#: takeover of dead nodes' runs among them. No transaction of tickwork idles for long.
IDLE_IN_TRANSACTION: Final = "20s"


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


def pinned_conninfo(conninfo: str, conn: psycopg.Connection[Any]) -> str:
    """``conninfo`` with every option libpq took from elsewhere for ``conn`` (``PG*``
    environment variables, a service file, its defaults) written in.

    libpq reads the environment at each connect, and a task on the node's own process
    may change it (``os.environ["PGSSLMODE"] = "require"``): the node's later
    connections (after a server restart, say) would then fail for good. With the
    options the first connection used written in, they connect as it did.
    """
    given = psycopg.conninfo.conninfo_to_dict(conninfo)
    used = {
        option.keyword.decode(): option.val.decode()
        for option in conn.pgconn.info
        if option.val is not None and option.keyword.decode() not in given
    }
    # libpq reports the address it reached as ``hostaddr``: written in, a host name
    # would no longer be looked up again (a fail-over moving it to another address).
    if used.get("hostaddr") is not None and used["hostaddr"] != os.environ.get("PGHOSTADDR"):
        del used["hostaddr"]
    return psycopg.conninfo.make_conninfo(conninfo, **used) if used else conninfo


#: ``IDLE_IN_TRANSACTION`` where nothing else set the timeout.
_IDLE_IN_TRANSACTION_UNSET: Final = _pg(queries_for("postgres")["set_idle_in_transaction_unset"])


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SESSION_UTC)
    conn.execute(_IDLE_IN_TRANSACTION_UNSET, (IDLE_IN_TRANSACTION,))
    text_json(conn)


class PgConnections(SqlCore):
    """The pool and the transactions on its connections."""

    _conninfo: str
    _connect_with: str
    _settings: PostgresURL
    _pool: ConnectionPool[psycopg.Connection[Any]] | None
    _last_used: dict[int, float]

    def _connect(self) -> psycopg.Connection[Any]:
        with self._translate():
            conn = psycopg.connect(self._connect_with, autocommit=True)
        _configure(conn)
        return conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn psycopg's errors into tickwork's, without ever showing a password."""
        try:
            yield
        except psycopg.errors.IntegrityError as exc:
            raise ConflictError(self._clean(exc)) from exc
        except (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            # The server ended a session idle in a transaction (``IDLE_IN_TRANSACTION``):
            # a connection lost, as for any other reason, not a refusal of what it wrote.
            psycopg.errors.IdleInTransactionSessionTimeout,
        ) as exc:
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
