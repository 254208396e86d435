"""When the main loop looks at the store again: wake-ups from this process (a change
made here, a run ended here) and from others (the change watcher, a thread blocked in
``Store.wait_for_change``).

A wake-up may say when the work it adds is due; when the loop will look by then anyway,
it is not woken, so adding many schedules one after another does not cost a look each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Final

from tickwork.engine.core import Core
from tickwork.errors import StoreError

_WAKE_ANY: Final = object()  # a wake-up that did not say when its work is due


class Wakeups:
    """The main loop's alarm: set by wake-ups, cleared when the loop looks."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self.event = asyncio.Event()
        #: The earliest due instant announced by wake-ups since the loop last looked.
        self._hint: datetime | object | None = None
        #: When the main loop is asleep, the instant it will wake at by itself.
        self.sleep_target: datetime | None = None

    def wake(self, due_at: datetime | None = None) -> None:
        """Make the main loop look at the store now (thread-safe).

        ``due_at``: the change only adds work due then. When the loop will look at the
        store by then anyway (asleep until an earlier instant, or busy and about to
        sleep until one), it is not woken.
        """
        target = self.sleep_target
        if due_at is not None and target is not None and due_at >= target:
            return
        loop = self._core.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._note(due_at)
        else:
            loop.call_soon_threadsafe(self._note, due_at)

    def _note(self, due_at: datetime | None) -> None:
        """On the loop: remember the earliest work the wake-ups since the last look
        announced (``_WAKE_ANY``: unknown, look again in any case)."""
        hint = self._hint
        if due_at is None or hint is _WAKE_ANY:
            self._hint = _WAKE_ANY
        elif not isinstance(hint, datetime) or due_at < hint:
            self._hint = due_at
        self.event.set()

    def looking(self) -> None:
        """The loop looks at the store now: what was announced is seen."""
        self.event.clear()
        self._hint = None

    def needed(self, target: datetime) -> bool:
        """Whether a wake-up received while busy needs a new look before sleeping until
        ``target`` (it does unless all it announced is due at ``target`` or later)."""
        if not self.event.is_set():
            return False
        hint = self._hint
        if isinstance(hint, datetime) and hint >= target:
            self.looking()
            return False
        return True

    async def sleep_until(self, target: datetime) -> None:
        """Sleep until ``target`` or a wake-up."""
        self.sleep_target = target
        try:
            await self._core.clock.sleep_until(target, self.event)
        finally:
            self.sleep_target = None


class ChangeWatcher:
    """A thread that waits for other processes' commits (``Store.wait_for_change``) and
    calls ``on_change`` for each."""

    def __init__(self, core: Core, on_change: Callable[[], None]) -> None:
        self._core = core
        self._on_change = on_change
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="tickwork-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._core.store.interrupt_wait()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5)

    def join(self, timeout: float) -> None:
        """Wait for the thread to end (once the node is stopping), on this thread."""
        self._core.store.interrupt_wait()
        if self._thread is not None:
            self._thread.join(timeout)

    def _watch(self) -> None:
        core = self._core
        while not core.stopping:
            try:
                changed = core.store.wait_for_change(1.0)
            except StoreError:
                changed = False
                threading.Event().wait(1.0)
            if changed and not core.stopping:
                self._on_change()
