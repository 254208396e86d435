"""Noticing commits to a SQLite file, from any process: its change counter, polled.

``PRAGMA data_version`` on a connection moves whenever another connection commits, in
this process or another, and costs a read of the file's header: polled every
``POLL_INTERVAL`` on a connection of the watch's own, it wakes a node's engine
(``Store.wait_for_change``) and the event feed's followers (``Store.watch_events``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import suppress

from tickwork.store.base import EventWatch
from tickwork.store.sqlite_errors import translate
from tickwork.store.sqlite_file import connect_uri

#: How often a wait looks at the file's change counter.
POLL_INTERVAL = 0.05


class FileWatch(EventWatch):
    """Waits for a commit to the file at ``path``; ``interrupt`` ends a wait early (from
    any thread).

    ``look_first``: the first wait returns True at once. A follower of the event feed
    reads the newest event before its first wait, and a commit made between that read
    and the watch's first look at the counter would otherwise move nothing the watch
    sees. Without it the first wait only notes where the counter is, then waits.
    """

    def __init__(self, path: str, busy_timeout: float, *, look_first: bool) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._look_first = look_first
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._interrupt = threading.Event()

    def wait(self, timeout: float) -> bool:
        """True when the file changed (or on the first wait, with ``look_first``); False
        when ``timeout`` seconds passed or the wait was interrupted."""
        deadline = time.monotonic() + max(0.0, timeout)
        with translate(self._path):
            if self._conn is None:
                self._conn = sqlite3.connect(
                    connect_uri(self._path),  # a watch never creates the file
                    uri=True,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._version = self._read_version()
                if self._look_first:
                    return True
            while True:
                if self._interrupt.is_set():
                    self._interrupt.clear()
                    return False
                version = self._read_version()
                if version != self._version:
                    self._version = version
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._interrupt.wait(min(POLL_INTERVAL, remaining))

    def _read_version(self) -> int:
        assert self._conn is not None
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def interrupt(self) -> None:
        self._interrupt.set()

    def close(self) -> None:
        """Close the connection (a later wait opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(sqlite3.Error):
                conn.close()
