"""Checkpoints of a SQLite store's WAL, on a thread of their own.

SQLite checkpoints the WAL in the commit that takes it past 1000 pages: that commit
copies the pages to the database file and fsyncs both files before it returns, some
25 ms for 1000 pages, while the store's write lock (and every trip to the store
behind it) waits. A burst of runs writes that much every thousand runs or so.

Here a thread of the store checkpoints (``PRAGMA wal_checkpoint(PASSIVE)``, on its own
connection) once the store's commits have written about as many pages since the last
time as SQLite's own checkpoints would copy (``CHECKPOINT_WEIGHT`` estimates them): as
many fsyncs as before, none of them in a commit. (A write to the WAL may wait for an
fsync of it under way, so checkpointing more often would cost the commits.) A passive
checkpoint takes no lock a writer or a reader needs: commits go on meanwhile, and the
next one after a checkpoint of every page starts the WAL over from its beginning.

Under commits that never pause (a burst) each pass leaves behind the pages committed
while it ran, and the WAL would grow for good; so once it holds ``CATCH_UP_FRAMES``,
the thread copies what its last pass left behind holding the store's write lock (a
short pass: the rest is copied), and the next commit starts the WAL over. The store's
connections checkpoint by themselves only past ``BACKSTOP_FRAMES`` (should this thread
fall behind), not at SQLite's default of 1000: in a burst that would be a checkpoint,
and two fsyncs, at every commit once the WAL is past 1000 pages and this thread is
between passes. Nothing about durability changes: a commit is durable in the WAL
whether or not it was checkpointed.

On a full disk a commit fails while the WAL may hold pages already committed: the
store asks this thread for a checkpoint that also truncates the WAL
(``PRAGMA wal_checkpoint(TRUNCATE)``, ``reclaim``), which copies them into the database
file and gives the WAL's space back. The next commit then fits if the WAL was what
filled the disk, and once space is freed otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Final

from tickwork.errors import StoreError

log = logging.getLogger("tickwork.store")

#: The pages a commit writes, estimated without asking SQLite: ``COMMIT_WEIGHT`` for
#: the commit (a small one writes about five pages) plus one per row it changed
#: (``sqlite3.Connection.total_changes``; a batch of 50 ends and claims changes some
#: 300 rows on about 45 pages).
COMMIT_WEIGHT: Final = 16
#: The weight of commits between two checkpoints: about 1000 pages of small commits,
#: 600 of a burst's.
CHECKPOINT_WEIGHT: Final = 4000
#: Frames in the WAL (16 MB of 4 KB pages) from which a checkpoint is followed by a
#: pass holding the write lock, so that the WAL starts over: about every 4,000 runs
#: of a burst.
CATCH_UP_FRAMES: Final = 4000
#: ``PRAGMA wal_autocheckpoint`` of the store's pooled connections.
BACKSTOP_FRAMES: Final = 10_000


class Checkpointer:
    """Checkpoints the WAL on its own thread, started at the store's first commit.

    ``wrote`` is called after each commit with the rows it changed, holding ``lock``
    (the store's write lock); ``connect`` opens the connection the thread uses.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        lock: threading.Lock,
        every: int = CHECKPOINT_WEIGHT,
    ) -> None:
        self._connect = connect
        self._lock = lock
        self.every = every
        self._weight = 0
        self._due = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        #: Checkpoints made (each one of every page written up to its start).
        self.done = 0
        #: Passes made holding the write lock, so that the WAL starts over.
        self.catch_ups = 0
        #: Set while such a pass waits for the lock or runs.
        self.catching_up = False
        #: Set when no checkpoint is due nor running.
        self.idle = threading.Event()
        #: Set once the thread has its connection open.
        self.connected = threading.Event()
        self.idle.set()
        #: Set by ``reclaim``: the next pass truncates the WAL.
        self._truncate = False
        #: Passes that truncated the WAL (after a write found the disk full).
        self.reclaims = 0

    def _start(self) -> None:
        if self._thread is None and not self._stop:
            self._thread = threading.Thread(
                target=self._run, name="tickwork-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def wrote(self, changes: int) -> None:
        """A commit changed ``changes`` rows: checkpoint once enough was written."""
        if self._thread is None:
            # Started at the first commit, its connection opened at once: neither then
            # costs the commit that first needs a checkpoint (a burst's fire), whose
            # runs wait for the store thread and the GIL those would take.
            self._start()
        self._weight += COMMIT_WEIGHT + changes
        if self._weight < self.every or self._stop:
            return
        self._weight = 0
        self.idle.clear()
        self._due.set()

    def reclaim(self) -> None:
        """A commit failed on a full disk: checkpoint every page and truncate the WAL,
        so that its space goes back to the file system (see the module's docstring)."""
        if self._stop:
            return
        self._start()
        self._truncate = True
        self.idle.clear()
        self._due.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stop = True
        self._due.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            with contextlib.suppress(sqlite3.Error, StoreError):  # else at the first checkpoint
                conn = self._connect()
                self.connected.set()
            while True:
                self._due.wait()
                if self._stop:
                    return
                self._due.clear()
                try:
                    if conn is None:
                        conn = self._connect()
                        self.connected.set()
                    self._checkpoint(conn)
                    self.done += 1
                except (sqlite3.Error, StoreError) as exc:  # the commits' own ones still work
                    log.debug("WAL checkpoint failed: %s", exc)
                if not self._due.is_set():
                    self.idle.set()
        finally:
            self.idle.set()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        if self._truncate:
            self._truncate = False
            # Waits (busy timeout) for readers of older pages; writers wait meanwhile,
            # and a full disk fails them anyway.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            self.reclaims += 1
            return
        # The frames counted are those of the pass's start; commits may have added more.
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= CATCH_UP_FRAMES:
            self.catching_up = True  # try_add_schedule leaves the lock to this thread
            try:
                with self._lock:  # no commit of this process until every page is copied
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.catch_ups += 1
            finally:
                self.catching_up = False
