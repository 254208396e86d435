"""Pages of schedules read again while the SQLite file has not changed.

The REST API and the dashboard list the same pages over and over (clients polling, a
page refreshing). ``PRAGMA data_version`` tells a connection whether any other
connection (of this process or another) has committed since it last looked, and its
``total_changes`` whether it wrote itself. While both stay the same, a page's ids and
revisions are what the connection read the last time, and the read is skipped: a
third of a list's cost in the server.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any, Final

#: The statement and parameters of a page.
PageKey = tuple[str, tuple[Any, ...]]
#: A page's ids and revisions, in its order.
Page = tuple[tuple[str, int], ...]
#: Pages kept per connection (the filters in use at once; more start the set afresh).
MOST_PAGES: Final = 64


def file_version(conn: sqlite3.Connection) -> tuple[int, int]:
    """What changes whenever the file's content may have: another connection's commit
    (``data_version``) or one of this connection's own writes (``total_changes``)."""
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    return int(version), conn.total_changes


class KeptPages:
    """The pages each connection read last, with the file's version they were read at.
    A connection is used by one thread at a time, so each one's pages are too."""

    def __init__(self) -> None:
        self._by_connection: dict[sqlite3.Connection, tuple[tuple[int, int], dict[PageKey, Page]]]
        self._by_connection = {}
        self._lock = threading.Lock()

    def get(self, conn: sqlite3.Connection, version: tuple[int, int], key: PageKey) -> Page | None:
        kept = self._by_connection.get(conn)
        if kept is None or kept[0] != version:
            return None
        return kept[1].get(key)

    def put(
        self,
        conn: sqlite3.Connection,
        version: tuple[int, int],
        key: PageKey,
        page: Sequence[tuple[str, int]],
    ) -> None:
        """Keep ``page`` as read by ``conn`` at ``version`` (read before the page was)."""
        kept = self._by_connection.get(conn)
        if kept is None or kept[0] != version or len(kept[1]) >= MOST_PAGES:
            kept = (version, {})
            with self._lock:
                self._by_connection[conn] = kept
        kept[1][key] = tuple(page)

    def forget(self, conns: Sequence[sqlite3.Connection]) -> None:
        """Drop the pages of connections being closed."""
        with self._lock:
            for conn in conns:
                self._by_connection.pop(conn, None)
