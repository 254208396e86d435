"""Calling the synchronous store from the event loop without blocking it.

Each call is noted while a thread of the pool runs it (``out``): a call the database
does not answer (a lock another process holds, a server gone under a long timeout)
waits there in silence otherwise. ``StoreCallWatch`` (``engine.store_watch``) reads the
notes and says which call waits, and for how long; the note costs a dict insert and pop
per call, and calls are made per batch, not per run.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("tickwork.engine")


class StoreCall:
    """A store call a thread of the pool runs now."""

    __slots__ = ("fn", "said", "started")

    def __init__(self, fn: Callable[..., object], started: float) -> None:
        self.fn = fn
        #: ``time.monotonic()`` when a thread began it (time queued for a thread is not
        #: the database's: the calls ahead of it are noted themselves).
        self.started = started
        #: Warnings said of it (by ``StoreCallWatch``); its return is said when any was.
        self.said = 0

    @property
    def name(self) -> str:
        """The store method's name (``heartbeat``, ``fire_and_claim``)."""
        return str(getattr(self.fn, "__name__", None) or repr(self.fn))


class StoreCalls:
    """Runs store methods on a small dedicated thread pool."""

    def __init__(self, threads: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tickwork-db")
        self._keys = itertools.count()
        #: The calls running now, by a number of their own. Written by the pool's
        #: threads; read (copied) by the watch.
        self.out: dict[int, StoreCall] = {}

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, functools.partial(self._run, fn, *args, **kwargs)
        )

    def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """On a thread of the pool: noted from its start to its return, so that a call
        whose caller was cancelled is still seen while it holds its thread."""
        key = next(self._keys)
        call = self.out[key] = StoreCall(fn, time.monotonic())
        try:
            return fn(*args, **kwargs)
        finally:
            del self.out[key]
            if call.said:
                log.warning(
                    "store call %s returned after %.1f s",
                    call.name,
                    time.monotonic() - call.started,
                )

    def oldest(self) -> float:
        """Seconds the longest running call has been out (0: none)."""
        calls = self.out.copy()  # one step under the GIL: the threads may change it
        if not calls:
            return 0.0
        return max(0.0, time.monotonic() - min(c.started for c in calls.values()))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
