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
"""

from __future__ import annotations

import asyncio
import logging
import time

from tickwork.engine.storecalls import StoreCalls

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
        if not calls:
            return
        now = time.monotonic() if now is None else now
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
