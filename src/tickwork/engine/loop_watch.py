"""The loop watch: saying which run blocks the node's event loop, and where.

An async task that calls blocking code (``time.sleep``, ``requests.get``, a long
computation) holds the event loop every other run, every fire and every heartbeat of
its node waits on: nothing can preempt it. What can be done is to say so while it
happens, naming the culprit. A timer of the loop stamps the time every
``LOOP_STAMP`` seconds; a daemon thread looks at the stamp as often, and once it is
``LOOP_BLOCKED`` seconds old logs a warning with the run whose task the loop is in (if
it is in one) and the line it is blocked on. When the loop runs again, it logs how
long it was blocked.

The same thread keeps the loop's signal handlers its own. A signal the loop handles
(``loop.add_signal_handler``: SIGTERM and SIGINT of a worker) reaches it through a
handler of the ``signal`` module; a task calling ``signal.signal`` for it on the loop's
thread replaced that handler, and the node no longer heard the signal: a worker told to
stop went on. Once such a replacement is seen, the loop's handler is put back, with a
warning. So does the log capture: a task that reconfigured logging (``dictConfig``,
``basicConfig(force=True)``) had taken the capture of every run's records away, or
silenced tickwork's own loggers (``context.keep_log_capture``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Final

from tickwork.engine.context import keep_log_capture, warn
from tickwork.models import Run

log = logging.getLogger("tickwork.engine")

#: The ``signal`` handler behind every signal an asyncio loop handles (None where asyncio
#: has none: not on Unix).
_LOOP_SIGNAL_HANDLER: Final = getattr(
    getattr(asyncio, "unix_events", None), "_sighandler_noop", None
)

#: Seconds between two stamps of the loop, and two looks of the thread.
LOOP_STAMP: Final = 0.25
#: Seconds without a stamp after which the loop counts as blocked.
LOOP_BLOCKED: Final = 2.0


class LoopWatch:
    """Watches one event loop; ``run_of`` names the run an asyncio task executes."""

    def __init__(
        self,
        run_of: Callable[[asyncio.Task[object]], Run | None],
        blocked_after: float = LOOP_BLOCKED,
        every: float = LOOP_STAMP,
    ) -> None:
        self._run_of = run_of
        #: Seconds without a stamp after which the loop counts as blocked.
        self.blocked_after = blocked_after
        #: Seconds between two stamps, and two looks.
        self.every = every
        self._stamp = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: When the block being reported began (None: the loop runs).
        self._blocked_since: float | None = None
        #: Blocks reported since start.
        self.blocks = 0
        #: Signal handlers of the loop put back since start.
        self.signals_restored = 0
        #: Times the log capture or tickwork's loggers were put back since start.
        self.logging_restored = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        self._stamp = time.monotonic()
        self._tick()
        self._thread = threading.Thread(
            target=self._watch, args=(loop_thread,), name="tickwork-loop-watch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        """On the loop: stamp the time, and say so if the loop was blocked till now."""
        now = time.monotonic()
        # The stamp first: saying the block is over may take a while (a slow log
        # stream), and the watch must not meanwhile see the block's old stamp as the
        # start of another one.
        self._stamp = now
        since = self._blocked_since
        if since is not None:
            self._blocked_since = None
            log.warning("the event loop runs again after %.1f s blocked", now - since)
        assert self._loop is not None
        self._timer = self._loop.call_later(self.every, self._tick)

    def _watch(self, loop_thread: int) -> None:
        """On the watch's thread: report a stamp too old, once per block."""
        loop = self._loop
        assert loop is not None
        while not self._stop.wait(self.every):
            if loop.is_closed():
                return  # left without stop(): nothing to watch any more
            if not loop.is_running():
                continue  # between two run_until_complete calls: not blocked
            try:
                self._keep_the_nodes(loop)
            except Exception:  # a look must never end the watch
                log.exception("looking at the node's signal handlers and logging failed")
            stamp = self._stamp
            age = time.monotonic() - stamp
            if age < self.blocked_after or self._blocked_since is not None:
                continue
            if self._stamp != stamp:
                continue  # the loop stamped meanwhile (then ended the last block)
            self._blocked_since = stamp
            self.blocks += 1
            try:
                self._report(loop_thread, age)
            except Exception:  # a report must never end the watch
                log.exception("the event loop is blocked; describing it failed")

    def _report(self, loop_thread: int, age: float) -> None:
        assert self._loop is not None
        task = asyncio.current_task(self._loop)
        run = self._run_of(task) if task is not None else None
        frame = sys._current_frames().get(loop_thread)
        where = ""
        if frame is not None:
            last = traceback.extract_stack(frame, limit=1)[-1]
            code = f": {last.line}" if last.line else ""
            where = f", at {last.filename}:{last.lineno} in {last.name}{code}"
        if run is not None:
            log.warning(
                "the event loop has been blocked for %.1f s by run %s (task %s)%s. Every run, "
                "fire and heartbeat of this node waits: an async task must await, never "
                "block; make it a sync task (def, not async def), or await an async client",
                age,
                run.id,
                run.task,
                where,
            )
        else:
            log.warning(
                "the event loop has been blocked for %.1f s%s. Every run, fire and heartbeat "
                "of this node waits",
                age,
                where,
            )

    def _keep_the_nodes(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the watch's thread: have the loop put back a handler of its replaced, and
        put back the log capture (see the module docstring)."""
        for sig in self._replaced_signals(loop):
            loop.call_soon_threadsafe(self._restore_signal, sig)
        restored = keep_log_capture()
        if restored:
            self.logging_restored += 1
            # The node's own handlers may be gone too: said on stderr then.
            warn(log, f"logging was reconfigured (by a task?); put back: {'; '.join(restored)}")

    @staticmethod
    def _replaced_signals(loop: asyncio.AbstractEventLoop) -> list[int]:
        """Signals the loop handles whose ``signal`` handler is no longer the loop's."""
        if _LOOP_SIGNAL_HANDLER is None:
            return []
        try:
            handled = list(getattr(loop, "_signal_handlers", None) or ())
        except RuntimeError:  # changed by the loop's thread meanwhile: the next look
            return []
        return [sig for sig in handled if signal.getsignal(sig) is not _LOOP_SIGNAL_HANDLER]

    def _restore_signal(self, sig: int) -> None:
        """On the loop (the main thread: only it can have set the handler)."""
        if sig not in self._replaced_signals(asyncio.get_running_loop()):
            return  # put back already, or no longer the loop's
        replaced_by = signal.getsignal(sig)
        signal.signal(sig, _LOOP_SIGNAL_HANDLER)
        self.signals_restored += 1
        log.warning(
            "the node's handler of %s was replaced (by %r: a task calling signal.signal?) "
            "and is put back: a task must leave the node's signals alone",
            signal.Signals(sig).name,
            replaced_by,
        )
