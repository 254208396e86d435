"""Following the database's event feed: every node's events, in this process.

The feed is written by the database in the transaction of each change (see
``Store.read_events``), so it holds the events of runs executed on any node, in commit
order, and survives restarts. ``EventFeed`` follows it: a thread waits on the store's
watch (``LISTEN`` on PostgreSQL, the file's change counter on SQLite) and wakes a task
that reads what is new, keeps the newest events in memory for the readers that are
caught up, and hands each batch to the listeners (metrics). A reader further behind
(a client resuming after an hour) is served from the database.

The newest event id only goes up, unless the database itself goes back: restored from
an older backup, or recreated. The feed then finds nothing after its position while
the database's newest is below it, and starts over from that newest (a new ``era``):
readers move there too (``reposition``), rather than wait, silent, for the ids to pass
their old positions.

Nothing here runs on the engine's path: the engine's statements write the feed through
the triggers, and following it costs one indexed read per wake-up.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

from tickwork.errors import StoreError
from tickwork.models import FeedEvent
from tickwork.store.base import EventWatch, Store

log = logging.getLogger("tickwork.feed")

#: Events read per query.
BATCH: Final = 500
#: Events kept in memory for readers that are caught up.
KEEP: Final = 20_000
#: The feed is read at least this often (seconds), watch or no watch.
POLL: Final = 1.0

FeedListener = Callable[[Sequence[FeedEvent]], None]


class EventFeed:
    """The feed of one store, followed from the moment ``start`` is called."""

    def __init__(self, store: Store, *, keep: int = KEEP, poll: float = POLL) -> None:
        self.store = store
        self.keep = keep
        self.poll = poll
        self._recent: list[FeedEvent] = []
        self._ids: list[int] = []
        #: The id of the newest event read; readers wait for it to move.
        self.last_id = 0
        #: How many times the feed started over (the database went back); a reader's
        #: position from an earlier era says nothing of this one.
        self.era = 0
        #: The position this era started at.
        self.era_start = 0
        self._listeners: list[FeedListener] = []
        #: Set when ``last_id`` moves or the feed stops, then replaced by a new one: a
        #: reader waits on the one current when it looked. No lock: a reader cancelled
        #: while it stops waiting (a dropped client, cancelled at every await by the
        #: server) leaves nothing held for the others.
        self._moved = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: EventWatch | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.closed = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start following from the newest event."""
        if self._task is not None:
            return
        self.last_id = await asyncio.to_thread(self.store.last_event_id)
        loop = asyncio.get_running_loop()
        self._watch = self.store.watch_events()
        self._thread = threading.Thread(
            target=self._watch_thread, args=(loop, self._watch), name="tickwork-feed", daemon=True
        )
        self._thread.start()
        self._task = asyncio.create_task(self._follow(), name="tickwork-feed")

    async def stop(self) -> None:
        """Stop following; readers waiting return at once."""
        self.closed = True
        self._stopping.set()
        if self._watch is not None:
            self._watch.interrupt()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
            self._thread = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self._notify()

    def _watch_thread(self, loop: asyncio.AbstractEventLoop, watch: EventWatch) -> None:
        while not self._stopping.is_set():
            try:
                changed = watch.wait(self.poll)
            except StoreError:
                changed = False
                self._stopping.wait(self.poll)
            if changed and not self._stopping.is_set():
                try:
                    loop.call_soon_threadsafe(self._wake.set)
                except RuntimeError:  # the loop closed under us
                    return

    # -- following ---------------------------------------------------------------------

    def add_listener(self, listener: FeedListener) -> Callable[[], None]:
        """Call ``listener(events)`` with every batch read, in order; returns a function
        that removes it. Listeners run on the event loop and must be quick."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.poll
        looked = loop.time()
        while True:
            try:
                events = await asyncio.to_thread(self.store.read_events, self.last_id, BATCH)
                if not events and loop.time() - looked >= self.poll:
                    # Nothing new: at most once a poll, whether the database went back.
                    looked = loop.time()
                    newest = await asyncio.to_thread(self.store.last_event_id)
                    if newest < self.last_id:
                        self._start_over(newest)
                backoff = self.poll
            except StoreError as exc:
                log.warning("cannot read the event feed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if events:
                self._take(events)
                self._notify()
                if len(events) >= BATCH:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()

    def _start_over(self, newest: int) -> None:
        """The database's newest event is below the feed's position: it was restored
        from an older backup or recreated. Follow it from its newest event on."""
        log.warning(
            "the event feed went back from event %d to %d (the database was restored or"
            " recreated): following it from there; open streams go on from there too",
            self.last_id,
            newest,
        )
        self._recent.clear()
        self._ids.clear()
        self.last_id = self.era_start = newest
        self.era += 1
        self._notify()

    def _take(self, events: Sequence[FeedEvent]) -> None:
        self._recent.extend(events)
        self._ids.extend(e.id for e in events)
        if len(self._recent) > self.keep:
            cut = len(self._recent) - self.keep
            del self._recent[:cut]
            del self._ids[:cut]
        self.last_id = events[-1].id
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:
                log.exception("event feed listener %r failed", listener)

    # -- reading -----------------------------------------------------------------------

    async def after(self, after: int, limit: int = BATCH) -> list[FeedEvent]:
        """Events with an id above ``after`` that this process has seen, oldest first:
        from memory when it still holds them all, else from the database."""
        if after >= self.last_id:
            return []
        if self._ids and after >= self._ids[0] - 1:
            start = bisect.bisect_right(self._ids, after)
            return self._recent[start : start + limit]
        return await asyncio.to_thread(self.store.read_events, after, limit)

    def reposition(self, after: int, era: int) -> tuple[int, int]:
        """Where a reader stands, and in which era, that was at ``after`` in ``era``:
        there, in the same era; else where the feed started over (what came after that
        reaches it)."""
        return (after, era) if era == self.era else (self.era_start, self.era)

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an event with an id above ``after``; True
        when there is one, or when the feed started over meanwhile (a reader then
        ``reposition``s); False on timeout or when the feed stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        era = self.era
        while self.last_id <= after and not self.closed and self.era == era:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            moved = self._moved
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await moved.wait()
        return self.last_id > after or self.era != era

    def _notify(self) -> None:
        """Wake every reader waiting now."""
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
