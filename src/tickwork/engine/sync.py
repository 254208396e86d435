"""``SyncScheduler``: the ``Scheduler`` API for synchronous programs (Flask, Django, scripts).

It runs a ``Scheduler`` on an event loop in a background thread and blocks on each
call::

    from tickwork import SyncScheduler

    with SyncScheduler("sqlite:///tickwork.db", engine=False) as scheduler:
        scheduler.add_schedule("reports:daily", "0 2 * * *", id="daily")
        run = scheduler.run_now("daily", wait=True, timeout=60)

Every coroutine method of ``Scheduler`` is available under the same name and takes
the same arguments; ``subscribe`` callbacks run on the background thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from tickwork.engine.scheduler import Scheduler


class SyncScheduler:
    """Blocking facade over ``Scheduler``; same constructor arguments."""

    def __init__(self, url: str = "sqlite:///tickwork.db", **options: Any) -> None:
        self._scheduler = Scheduler(url, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="tickwork-sync", daemon=True)
        self._thread.start()
        ready.wait()
        try:
            self._submit(self._scheduler.start())
        except BaseException:
            self._shutdown_loop()
            raise

    def stop(self, grace: float | None = None) -> None:
        if self._thread is None:
            return
        try:
            self._submit(self._scheduler.stop(grace))
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
        self._loop = None
        self._thread = None

    def _submit(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the scheduler is not started: use 'with SyncScheduler(...)'")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def subscribe(self, callback: Callable[[Any], Any]) -> Callable[[], None]:
        return self._scheduler.subscribe(callback)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._scheduler, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._submit(attr(*args, **kwargs))

        return blocking

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
