"""PostgreSQL reads awaited on the event loop: the REST API's hot reads (a page's
ids and revisions, an API token) on connections of their own, without a hop to a
store thread and back.

The hop cost the API's process more CPU than the read itself: the loop hands the
call to a thread, the two take turns on the interpreter lock, and the result comes
back through the loop's self-pipe. A round trip awaited on the loop costs a socket
write and a readiness event. These connections (psycopg ``AsyncConnection``,
autocommit, set up as the store's pool sets up its own) belong to the loop that read
first, at most ``size`` of them, opened when every one is busy; a read from any other
loop goes to a store thread as before (``usable``). A connection that breaks is
dropped with the idle ones and the read, which changes nothing, is made once more on
a new one: a restarted server or a killed backend costs the caller that one retry.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any, Final, TypeVar

import psycopg
from psycopg import pq
from psycopg.types.string import TextLoader

from tickwork.errors import StoreUnavailableError

T = TypeVar("T")

#: What every connection of the store runs first: instants come back in UTC.
SESSION_UTC: Final = "SET TIME ZONE 'UTC'"


def text_json(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """JSON comes back as text, decoded by the SQL core the same way for both dialects."""
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)


AsyncConn = psycopg.AsyncConnection[Any]
#: The work of one read: given a connection, the rows or record it reads.
Work = Callable[[AsyncConn], Awaitable[T]]


class AsyncReads:
    """A few ``AsyncConnection`` for reads on one event loop."""

    def __init__(
        self,
        conninfo: str,
        size: int,
        timeout: float,
        translate: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._conninfo = conninfo
        self._size = max(1, size)
        self._timeout = timeout
        #: The store's translation of driver errors into tickwork's.
        self._translate = translate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[AsyncConn] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def usable(self) -> bool:
        """True on the loop these connections belong to (or any, before the first read)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return not self._closed and (self._loop is None or self._loop is loop)

    async def read(self, work: Work[T]) -> T:
        """``work`` on a connection; once more on a new connection if that one broke."""
        for attempt in (1, 2):
            conn = await self._get()
            try:
                with self._translate():
                    result = await work(conn)
            except StoreUnavailableError:
                broken = conn.broken or conn.closed
                self._put(conn)
                if broken and attempt == 1:
                    # What broke one (a restarted server) most likely broke those idle
                    # beside it: the retry reads on a new connection.
                    self._drop_idle()
                    continue
                raise
            except BaseException:
                self._put(conn)
                raise
            self._put(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def translated(self, exc: Exception) -> Exception:
        """``exc`` as the store raises it: a read answered apart from ``read`` (one
        statement of a round) fails as it would have alone."""
        try:
            with self._translate():
                raise exc
        except Exception as out:
            return out
        return exc  # pragma: no cover (the translation lets nothing through)

    async def _get(self) -> AsyncConn:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        while True:
            if self._closed:
                raise StoreUnavailableError("the store is closed")
            if self._idle:
                return self._idle.pop()
            if self._open < self._size:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, self._timeout)
            except TimeoutError:
                raise StoreUnavailableError(
                    f"no PostgreSQL connection free within {self._timeout:g} s"
                ) from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: the next one takes the turn
                with suppress(ValueError):
                    self._waiters.remove(waiter)
                raise

    async def _connect(self) -> AsyncConn:
        with self._translate():
            async with asyncio.timeout(self._timeout):
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            try:
                await conn.execute(SESSION_UTC)
            except BaseException:
                conn.pgconn.finish()
                raise
        text_json(conn)
        return conn

    def _put(self, conn: AsyncConn) -> None:
        """Back to the idle ones when it is idle and sound; closed otherwise (a read
        cancelled mid-way leaves its connection in an unknown state)."""
        if self._closed or not _sound(conn):
            conn.pgconn.finish()
            self._open -= 1
        else:
            self._idle.append(conn)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()
        self._open -= len(idle)

    def close(self) -> None:
        """Close the idle connections, and the busy ones when they come back; from any
        thread (closing a libpq connection needs no loop)."""
        self._closed = True
        self._drop_idle()


def _sound(conn: AsyncConn) -> bool:
    """Open and idle: fit for the next statement. Autocommit, a statement's error leaves
    no transaction behind to roll back."""
    return (
        not conn.closed
        and not conn.broken
        and conn.info.transaction_status == pq.TransactionStatus.IDLE
    )


async def fetch(conn: AsyncConn, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one statement (psycopg's placeholders already in ``sql``)."""
    cur = conn.cursor()
    await cur.execute(sql, params)
    return await cur.fetchall()


class Batches:
    """Reads made together: every read asked for while the statements before it were
    on their way joins the next round trip.

    Under many concurrent requests, a round trip per request costs the process a
    statement's worth of driver work each (some 100 µs of CPU in psycopg); here the
    reads waiting when a connection frees up go out together: the revisions of every
    schedule asked for by id in one statement, and each distinct statement (a list's
    page with the same filters, a token) once for all who asked. Each read still
    answers with the rows as they were after it was asked for (the statement is sent
    after every read it serves was asked for), never with a result on its way already.

    A statement that fails on a sound connection (a value PostgreSQL refuses) fails only
    the reads it serves, and the round goes on: one bad request never fails the others.
    When the ids' statement fails, each id is read again alone, so that an id refused
    fails only its own readers. A broken connection fails the round, made again on a
    new one (``AsyncReads.read``) from the first statement not yet answered.
    """

    def __init__(self, reads: AsyncReads, by_ids: str) -> None:
        self._reads = reads
        #: The statement reading the rows of a list of ids (one parameter: the list).
        self._by_ids = by_ids
        self._ids: dict[str, list[asyncio.Future[list[tuple[Any, ...]]]]] = {}
        self._statements: dict[
            tuple[str, tuple[Any, ...]], list[asyncio.Future[list[tuple[Any, ...]]]]
        ] = {}
        #: A round trip waiting for its connection: the reads asked for now join it.
        self._gathering = False
        self._rounds: set[asyncio.Task[None]] = set()
        #: Round trips made (each one or more statements on one connection).
        self.rounds = 0

    async def by_id(self, key: str) -> list[tuple[Any, ...]]:
        """The rows of ``by_ids`` for this one id (its first column)."""
        future = self._future()
        self._ids.setdefault(key, []).append(future)
        return await future

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement (its parameters hashable)."""
        future = self._future()
        self._statements.setdefault((sql, tuple(params)), []).append(future)
        return await future

    def _future(self) -> asyncio.Future[list[tuple[Any, ...]]]:
        loop = asyncio.get_running_loop()
        if not self._gathering:
            self._gathering = True
            task = loop.create_task(self._round())
            self._rounds.add(task)  # held until done: the loop keeps a weak reference
            task.add_done_callback(self._rounds.discard)
        return loop.create_future()

    async def _round(self) -> None:
        ids: dict[str, list[asyncio.Future[list[tuple[Any, ...]]]]] = {}
        statements: dict[
            tuple[str, tuple[Any, ...]], list[asyncio.Future[list[tuple[Any, ...]]]]
        ] = {}
        taken = False

        async def work(conn: AsyncConn) -> None:
            nonlocal ids, statements, taken
            if not taken:  # on the first connection: the reads asked for until now
                taken = True
                self.rounds += 1
                self._gathering = False
                ids, self._ids = self._ids, {}
                statements, self._statements = self._statements, {}
            if ids:
                rows = await self._rows(conn, self._by_ids, (list(ids),))
                if isinstance(rows, Exception) and len(ids) > 1:
                    # Most likely one id it cannot hold: each id alone then, so that
                    # only that id's readers get an error (a cost paid on failure only).
                    while ids:
                        key, futures = next(iter(ids.items()))
                        one = await self._rows(conn, self._by_ids, ([key],))
                        del ids[key]  # answered: not read again after a broken connection
                        _answer(futures, one)
                else:
                    found: dict[str, list[tuple[Any, ...]]] = {}
                    if not isinstance(rows, Exception):
                        for row in rows:
                            found.setdefault(row[0], []).append(row)
                    for key, futures in ids.items():
                        _answer(
                            futures, rows if isinstance(rows, Exception) else found.get(key, [])
                        )
                    ids = {}
            while statements:
                (sql, params), futures = next(iter(statements.items()))
                rows = await self._rows(conn, sql, params)
                del statements[(sql, params)]
                _answer(futures, rows)

        try:
            await self._reads.read(work)
        except BaseException as exc:
            if not taken:
                self._gathering = False
                ids, self._ids = self._ids, {}
                statements, self._statements = self._statements, {}
            for futures in (*ids.values(), *statements.values()):
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:
                        future.cancel()
            if not isinstance(exc, Exception):
                raise

    async def _rows(
        self, conn: AsyncConn, sql: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]] | Exception:
        """The rows, or the error of a statement the connection is not to blame for
        (raised when it is: the round is made again on a new connection)."""
        try:
            return await fetch(conn, sql, params)
        except Exception as exc:
            if not _sound(conn):
                raise
            return self._reads.translated(exc)


def _answer(futures: list[asyncio.Future[T]], value: T | Exception) -> None:
    for future in futures:
        if future.done():
            continue
        if isinstance(value, Exception):
            future.set_exception(value)
        else:
            future.set_result(value)
