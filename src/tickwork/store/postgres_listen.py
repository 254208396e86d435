"""PostgreSQL's notices: ``LISTEN``/``NOTIFY`` to wake other nodes when work changes
(``wait_for_change``), and the event feed read and watched (``watch_events``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Any

import psycopg

from tickwork.errors import StoreError
from tickwork.models import FeedEvent
from tickwork.store.base import EventWatch
from tickwork.store.feed import DELETE_CHUNK, feed_event
from tickwork.store.postgres_connections import PgConnections
from tickwork.store.sql import _aware

#: The channel of change notices (as the named statements ``notify_change`` and
#: ``add_schedule_notify`` write it).
CHANNEL = "tickwork"
#: Notified by the feed's commit trigger with the transaction's last event id.
EVENTS_CHANNEL = "tickwork_events"
#: How long ``wait_for_change`` blocks on the socket before looking at ``interrupt_wait``.
WAIT_SLICE = 0.1


class PgListen(PgConnections):
    """The event feed and change notification."""

    _token: str
    _changes: Listener

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
        return self._changes.wait(timeout)

    def interrupt_wait(self) -> None:
        self._changes.interrupt()


class Listener:
    """A connection of its own listening on one channel, for a thread that waits for
    notices: it waits in slices of ``WAIT_SLICE``, so that ``interrupt`` is seen within
    one, and takes a burst of notices as one wake-up.

    ``ignore``: a payload that is no news (this store's own notices). ``news_on_listen``:
    whether listening again after a lost connection counts as news by itself (notices
    sent while nobody listened are lost); a first ``LISTEN`` that had to be retried
    always does.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        *,
        ignore: str | None = None,
        news_on_listen: bool = False,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._ignore = ignore
        self._news_on_listen = news_on_listen
        self._conn: psycopg.Connection[Any] | None = None
        #: Set when listening failed: notices go unheard until it succeeds.
        self._deaf = False
        self._interrupt = threading.Event()

    def wait(self, timeout: float) -> bool:
        """True when a notice came, or one may have been missed (the connection broke,
        or listening again followed a failure); False at the timeout, on ``interrupt``,
        or while the server cannot be reached."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._conn is None:
            try:
                conn = self._connect()
                conn.execute(f"LISTEN {self._channel}")
            except (StoreError, psycopg.Error):
                self._deaf = True
                self._interrupt.wait(max(0.0, deadline - time.monotonic()))
                self._interrupt.clear()
                return False
            self._conn = conn
            missed, self._deaf = self._deaf, False
            if missed or self._news_on_listen:
                return True
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
                for note in conn.notifies(timeout=min(WAIT_SLICE, remaining)):
                    if note.payload != self._ignore:
                        seen = True
                        break
                if seen:
                    # Swallow what already arrived: one wake-up covers them all.
                    for _ in conn.notifies(timeout=0.0):
                        pass
                    return True
        except psycopg.Error:
            self.close()
            return True

    def interrupt(self) -> None:
        self._interrupt.set()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()


class _ListenWatch(EventWatch):
    """``LISTEN tickwork_events`` on a connection of its own. The feed's commit trigger
    notifies every transaction that wrote events, delivered once it has committed."""

    def __init__(self, store: PgConnections) -> None:
        # Listening (again) counts as news: events may have been written before it.
        self._listener = Listener(store._connect, EVENTS_CHANNEL, news_on_listen=True)

    def wait(self, timeout: float) -> bool:
        return self._listener.wait(timeout)

    def interrupt(self) -> None:
        self._listener.interrupt()

    def close(self) -> None:
        self._listener.close()
