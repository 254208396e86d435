"""A running attempt's log lines, written to the database while it runs, so a run's page
shows them before the attempt ends (``Store.write_live_logs``).

The attempt's own path only registers its capture and drops it at the end (a dict
insert and pop). A loop writes, at most once a second and only when some attempt has
new lines, every running attempt's new lines in one statement; the next passes delete
the lines of attempts whose end is written (their final lines hold them all). Lines are
bounded as an attempt's stored logs are (``MAX_LOG_RECORDS``, each line cut at
``MAX_LOG_MESSAGE``): the capture already cuts them. A node that dies leaves its
attempts' lines in place: a lost attempt's partial lines stay visible with its run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from tickwork.engine.context import MAX_LOG_RECORDS, LogCapture
from tickwork.engine.storecalls import StoreCalls
from tickwork.errors import StoreError
from tickwork.models import LogRecord
from tickwork.store.base import Store

log = logging.getLogger("tickwork.engine")

#: Seconds between writes of new lines (a line reaches the database within this).
LIVE_LOG_INTERVAL: Final = 1.0
#: Passes over which an ended attempt's lines are deleted once its end is written (an
#: end delayed longer leaves them, superseded by its final lines, until the run goes).
SETTLE_PASSES: Final = 60


class LiveLogs:
    """The attempts executing on this node whose lines are shown live."""

    def __init__(self) -> None:
        #: Running attempts' captures and how many of their (own, process's) lines
        #: were taken for writing.
        self._running: dict[LogCapture, list[int]] = {}
        #: Ended attempts (run id, attempt) with lines written, and passes left.
        self._ended: dict[tuple[str, int], int] = {}

    def started(self, capture: LogCapture) -> None:
        if capture.run_id is not None:
            self._running[capture] = [0, 0]

    def ended(self, capture: LogCapture) -> None:
        taken = self._running.pop(capture, None)
        if taken is not None and (taken[0] or taken[1]) and capture.run_id is not None:
            self._ended[(capture.run_id, capture.attempt)] = SETTLE_PASSES

    def take(self) -> tuple[list[tuple[str, LogRecord]], list[tuple[str, int]]]:
        """The running attempts' new lines (run id, record), and the ended attempts
        whose written lines are to be deleted."""
        lines: list[tuple[str, LogRecord]] = []
        for capture, taken in list(self._running.items()):
            room = MAX_LOG_RECORDS - taken[0] - taken[1]
            if room <= 0:
                continue
            own, remote = capture.since(taken[0], taken[1])
            if not own and not remote:
                continue
            taken[0] += len(own)
            taken[1] += len(remote)
            run_id = capture.run_id
            assert run_id is not None
            lines.extend((run_id, r) for r in sorted(own + remote, key=_at)[:room])
        return lines, list(self._ended)

    def settled(self, done: set[tuple[str, int]], tried: list[tuple[str, int]]) -> None:
        for key in tried:
            left = self._ended.get(key)
            if left is None:
                continue
            if key in done or left <= 1:
                del self._ended[key]
            else:
                self._ended[key] = left - 1

    async def write_once(self, store: Store, db: StoreCalls) -> int:
        """Write what ``take`` gives, in one transaction; the lines written."""
        lines, ended = self.take()
        if not lines and not ended:
            return 0
        done = await db(store.write_live_logs, lines, ended)
        self.settled(done, ended)
        return len(lines)

    async def run(self, store: Store, db: StoreCalls) -> None:
        """Write new lines every ``LIVE_LOG_INTERVAL`` until cancelled."""
        while True:
            await asyncio.sleep(LIVE_LOG_INTERVAL)
            try:
                await self.write_once(store, db)
            except StoreError as exc:  # shown live only: the final lines are the record
                log.warning("could not write running attempts' log lines: %s", exc)
            except Exception:  # the loop must outlive any surprise
                log.exception("could not write running attempts' log lines")


def _at(record: LogRecord) -> float:
    return record.at.timestamp()
