"""``SyncScheduler``: the ``Scheduler`` API for synchronous programs (Flask, Django, scripts).

It runs a ``Scheduler`` on an event loop in a background thread and blocks on each
call::

    from tickwork import SyncScheduler

    with SyncScheduler("sqlite:///tickwork.db", engine=False) as scheduler:
        scheduler.add_schedule("reports:daily", "0 2 * * *", id="daily")
        run = scheduler.run_now("daily", wait=True, timeout=60)

Every coroutine method of ``Scheduler`` is available under the same name and takes
the same arguments, from any thread but the background one: ``subscribe`` callbacks run
there, so one that calls the ``SyncScheduler`` back would wait for itself, and is
refused (an ``async def`` callback may await ``scheduler.scheduler``'s methods).

A ``SyncScheduler`` still started when the interpreter exits is stopped then, as
leaving its ``with`` block would stop it: running runs get ``shutdown_grace`` to
finish, and the node is recorded stopped rather than left for its lease to lapse.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from tickwork.engine.events import Subscriber
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import StoreError

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("tickwork")

#: The ``SyncScheduler``s started and not yet stopped, stopped at the interpreter's exit.
_STARTED: set[SyncScheduler] = set()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _stop_started_at_exit() -> None:
    """Stop every ``SyncScheduler`` still started: the interpreter is exiting."""
    for scheduler in list(_STARTED):
        try:
            scheduler.stop()
        except Exception:  # exiting anyway: say what was not stopped cleanly
            log.exception("could not stop a SyncScheduler at the interpreter's exit")


def _register_exit_hook() -> None:
    """Run ``_stop_started_at_exit`` when the interpreter exits, before the thread pools
    the scheduler's store calls use refuse new work: ``threading._register_atexit``
    (what ``concurrent.futures`` itself uses) runs its hooks in the reverse order of
    registration, and this one is registered after the pools' module is imported.
    ``atexit`` would run too late for that."""
    global _exit_hook_registered
    with _exit_hook_lock:
        if _exit_hook_registered:
            return
        register = getattr(threading, "_register_atexit", None)
        try:
            if register is not None:
                register(_stop_started_at_exit)
            else:  # pragma: no cover - every supported Python has it
                import atexit

                atexit.register(_stop_started_at_exit)
        except RuntimeError:  # the interpreter is already exiting
            return
        _exit_hook_registered = True


async def _cancel_the_rest() -> None:
    """Cancel every other task of the running loop and wait until they have ended."""
    current = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not current]
    for t in rest:
        t.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


def _blocking(
    method: Callable[Concatenate[Scheduler, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SyncScheduler, P], T]:
    """``method`` of ``Scheduler`` as a blocking method of ``SyncScheduler``: same name,
    arguments and docstring, typed for the caller."""

    @functools.wraps(method)
    def blocking(self: SyncScheduler, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._submit(method(self._scheduler, *args, **kwargs))

    return blocking


def _arguments_of(
    init: Callable[Concatenate[Scheduler, P], None],
) -> Callable[[Callable[..., None]], Callable[Concatenate[SyncScheduler, P], None]]:
    """Give the decorated ``__init__`` the signature of ``init``, for type checkers and
    for ``help()``."""

    def typed(method: Callable[..., None]) -> Callable[Concatenate[SyncScheduler, P], None]:
        functools.update_wrapper(method, init)
        return method

    return typed


class SyncScheduler:
    """Blocking facade over ``Scheduler``; same constructor arguments."""

    @_arguments_of(Scheduler.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._scheduler = Scheduler(*args, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: Set while ``stop`` cancels the calls still waiting, so they say why.
        self._stopping = False

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._stopping = False

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
        _register_exit_hook()
        _STARTED.add(self)

    def stop(self, grace: float | None = None) -> None:
        if self._thread is None:
            return
        self._refuse_own_loop()  # before anything is torn down
        _STARTED.discard(self)
        self._stopping = True
        try:
            self._submit(self._scheduler.stop(grace), stopping=True)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            # Calls other threads are still waiting on (run_now with wait=True) would
            # wait forever on a stopped loop: they are cancelled, and raise.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
        self._loop = None
        self._thread = None

    def _submit(self, coro: Coroutine[Any, Any, T], *, stopping: bool = False) -> T:
        """Run ``coro`` on the background loop and wait for it. A call that another
        thread's ``stop`` cut short (cancelled, or its store closed under it) raises a
        ``RuntimeError`` saying so (``stopping``: the ``stop`` call itself)."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the scheduler is not started: use 'with SyncScheduler(...)'")
        try:
            self._refuse_own_loop()
        except RuntimeError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except (concurrent.futures.CancelledError, StoreError, RuntimeError) as exc:
            if self._stopping and not stopping:
                raise RuntimeError(
                    "the SyncScheduler was stopped while this call was waiting"
                ) from exc
            raise

    def _refuse_own_loop(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a SyncScheduler method was called on the scheduler's own event loop (from "
                "a subscribe callback or an async task it runs), where it would wait for "
                "itself forever: there, await the methods of SyncScheduler.scheduler"
            )

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for each event (on the background thread)."""
        return self._scheduler.subscribe(callback)

    @property
    def stuck_threads(self) -> int:
        """``Scheduler.stuck_threads``."""
        return self._scheduler.stuck_threads

    @property
    def stuck_coroutines(self) -> int:
        """``Scheduler.stuck_coroutines``."""
        return self._scheduler.stuck_coroutines

    # Every coroutine method of ``Scheduler``, blocking, with its exact signature.
    active_runs = _blocking(Scheduler.active_runs)
    add_schedule = _blocking(Scheduler.add_schedule)
    audit_log = _blocking(Scheduler.audit_log)
    backfill = _blocking(Scheduler.backfill)
    cancel_run = _blocking(Scheduler.cancel_run)
    check_session = _blocking(Scheduler.check_session)
    check_token = _blocking(Scheduler.check_token)
    cleanup = _blocking(Scheduler.cleanup)
    count_schedules = _blocking(Scheduler.count_schedules)
    counts = _blocking(Scheduler.counts)
    create_token = _blocking(Scheduler.create_token)
    delete_schedule = _blocking(Scheduler.delete_schedule)
    end_session = _blocking(Scheduler.end_session)
    get_run = _blocking(Scheduler.get_run)
    get_schedule = _blocking(Scheduler.get_schedule)
    known_tasks = _blocking(Scheduler.known_tasks)
    list_runs = _blocking(Scheduler.list_runs)
    list_schedules = _blocking(Scheduler.list_schedules)
    list_tokens = _blocking(Scheduler.list_tokens)
    next_fire_times = _blocking(Scheduler.next_fire_times)
    nodes = _blocking(Scheduler.nodes)
    overdue_fires = _blocking(Scheduler.overdue_fires)
    pause = _blocking(Scheduler.pause)
    read_queue = _blocking(Scheduler.read_queue)
    recent_runs = _blocking(Scheduler.recent_runs)
    resume = _blocking(Scheduler.resume)
    revoke_token = _blocking(Scheduler.revoke_token)
    run_activity = _blocking(Scheduler.run_activity)
    run_now = _blocking(Scheduler.run_now)
    schedule_counts = _blocking(Scheduler.schedule_counts)
    schedule_ids = _blocking(Scheduler.schedule_ids)
    schedule_page = _blocking(Scheduler.schedule_page)
    schedule_revisions = _blocking(Scheduler.schedule_revisions)
    start_session = _blocking(Scheduler.start_session)
    stats = _blocking(Scheduler.stats)
    task_spec = _blocking(Scheduler.task_spec)
    upcoming_schedules = _blocking(Scheduler.upcoming_schedules)
    update_schedule = _blocking(Scheduler.update_schedule)
    upgrade = _blocking(Scheduler.upgrade)
    wait_for_run = _blocking(Scheduler.wait_for_run)

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
