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
dropped and the read, which changes nothing, is made once more on a new one: a
restarted server or a killed backend costs the caller that one retry.
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
                    continue
                raise
            except BaseException:
                self._put(conn)
                raise
            self._put(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

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
        if (
            self._closed
            or conn.closed
            or conn.broken
            or conn.info.transaction_status != pq.TransactionStatus.IDLE
        ):
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

    def close(self) -> None:
        """Close the idle connections, and the busy ones when they come back; from any
        thread (closing a libpq connection needs no loop)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()
        self._open -= len(idle)


async def fetch(conn: AsyncConn, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one statement (psycopg's placeholders already in ``sql``)."""
    cur = conn.cursor()
    await cur.execute(sql, params)
    return await cur.fetchall()
