"""The store watch: saying which store call the database keeps waiting, and how long.

A store call that hangs (another process holds SQLite's write lock; PostgreSQL waits
for a row lock, or for a server gone away under a long timeout) holds up whatever of
the node awaits it: its fires, its claims, its heartbeats. Nothing of it is logged
while it waits, and ``/health`` only says "stalled" once the node's heartbeat is older
than ``lease_ttl``. The watch looks at the calls out (``StoreCalls.out``) and, once one
has been out for ``slow_after`` seconds, logs a warning naming the store method and
how long it has waited; again at twice that, four times, and so on (a call hung for
an hour is said about a dozen times, not every few seconds). When a call that was said
returns, ``StoreCalls`` logs how long it took.

Its times are the real clock's (``time.monotonic``), never the engine's ``Clock``: a
call waits on the database in real time, whatever a ``ManualClock`` says.

``slow_since`` is when the oldest call out past ``slow_after`` began (wall clock,
``time.time()``; None while every call out is younger), what ``/metrics`` reports as
``tickwork_store_call_oldest_seconds``; ``on_slow`` is told each change of it (``serve``'s
engine process passes it on to the process that serves ``/metrics``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tickwork.engine.storecalls import StoreCall, StoreCalls

log = logging.getLogger("tickwork.engine")


class StoreCallWatch:
    """Watches the store calls of one node's engine."""

    def __init__(self, calls: StoreCalls, slow_after: float, every: float) -> None:
        self._calls = calls
        #: Seconds a call is out before it is said in a warning.
        self.slow_after = slow_after
        #: Seconds between two looks.
        self.every = every
        #: Warnings said since start.
        self.warnings = 0
        #: When (``time.time()``) the oldest call out past ``slow_after`` began.
        self.slow_since: float | None = None
        #: Told each change of ``slow_since`` (on the event loop).
        self.on_slow: Callable[[float | None], None] | None = None
        self._slow_key: int | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                self.look()
            except Exception:  # a look must never end the watch
                log.exception("looking at the node's store calls failed")

    def look(self, now: float | None = None) -> None:
        """Say each call out past its next threshold (``slow_after`` times 1, 2, 4...) at
        ``now`` (``time.monotonic()``, the default)."""
        calls = self._calls.out.copy()  # one step under the GIL: the threads change it
        now = time.monotonic() if now is None else now
        self._note_slow(calls, now)
        for key, call in sorted(calls.items()):
            waited = now - call.started
            if waited < self.slow_after * 2**call.said:
                continue
            if key not in self._calls.out:
                continue  # returned meanwhile: its return is not said, nor is it
            call.said += 1
            self.warnings += 1
            others = len(calls) - 1
            log.warning(
                "store call %s has waited %.1f s for the database%s; this node's fires, "
                "claims or heartbeats wait with it (a lock another process holds, or a "
                "database that does not answer)",
                call.name,
                waited,
                f" ({others} other call{'s' if others > 1 else ''} out)" if others else "",
            )

    def _note_slow(self, calls: dict[int, StoreCall], now: float) -> None:
        """Keep ``slow_since`` for the oldest call out, once it is past ``slow_after``."""
        oldest = min(calls.items(), key=lambda kc: kc[1].started, default=None)
        key = None
        if oldest is not None and now - oldest[1].started >= self.slow_after:
            key = oldest[0]
        if key == self._slow_key:
            return
        self._slow_key = key
        if oldest is None or key is None:
            self.slow_since = None
        else:
            self.slow_since = time.time() - (now - oldest[1].started)
        if self.on_slow is not None:
            self.on_slow(self.slow_since)
