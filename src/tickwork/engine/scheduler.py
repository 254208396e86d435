"""``Scheduler``: the one object users, the CLI and the API talk to.

It validates requests (``tickwork.validation``), turns them into store transactions,
wakes the engine, and emits events. With ``engine=True`` (the default) it also runs an
``Engine`` for this process: a node that fires and executes. With ``engine=False`` it
is a client: it changes and reads the database, and the nodes do the work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from tickwork.clock import Clock, SystemClock
from tickwork.engine.config import (
    MAX_NODE_COUNT,
    MAX_RETENTION_DAYS,
    EngineConfig,
    engine_config,
)
from tickwork.engine.events import EventBus, Subscriber
from tickwork.engine.facade_admin import AdminCalls
from tickwork.engine.facade_runs import RunCalls
from tickwork.engine.facade_schedules import ScheduleCalls
from tickwork.engine.ids import new_id, node_id
from tickwork.engine.registry import REGISTRY, TaskRegistry
from tickwork.engine.storecalls import StoreCalls
from tickwork.errors import ConflictError, ScheduleError, ValidationError
from tickwork.models import (
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TIMEOUT,
    AuditEntry,
    RetryPolicy,
    Schedule,
)
from tickwork.store import open_store
from tickwork.store.base import Store
from tickwork.store.url import parse_url
from tickwork.validation import check_id, integer, new_schedule, parse_retry, seconds

if TYPE_CHECKING:
    from tickwork.engine.runtime import Engine

log = logging.getLogger("tickwork")
T = TypeVar("T")

DEFAULT_URL: Final = "sqlite:///tickwork.db"

#: Seconds of adds committed on the loop's thread (``Scheduler._add``) between two
#: chances for the rest of the loop to run.
INLINE_YIELD_EVERY: Final = 0.001


class Scheduler(ScheduleCalls, RunCalls, AdminCalls):
    """A tickwork scheduler on one database.

    ``async with Scheduler("sqlite:///tickwork.db") as scheduler:`` opens the store
    (applying migrations), and with ``engine=True`` starts this process's node, which
    executes the tasks registered with ``@task``. Leaving the block stops the node
    gracefully (running runs get ``shutdown_grace`` seconds).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        engine: bool = True,
        registry: TaskRegistry | None = None,
        clock: Clock | None = None,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        lease_ttl: float | timedelta = DEFAULT_LEASE_TTL,
        shutdown_grace: float | timedelta = 30.0,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        cleanup_interval: float | timedelta = 3600.0,
        default_timeout: float | timedelta = DEFAULT_TIMEOUT,
        default_retry: RetryPolicy | dict[str, Any] | None = None,
        max_threads: int = 32,
        store_threads: int = 4,
        engine_thread: bool = False,
        config: EngineConfig | None = None,
    ) -> None:
        # Checked here, before anything compares them, so a wrong type is an error
        # naming the argument (durations: seconds or a timedelta).
        max_concurrent = _count(max_concurrent, "max_concurrent")
        lease_ttl = seconds(lease_ttl, "lease_ttl", allow_zero=False)
        shutdown_grace = seconds(shutdown_grace, "shutdown_grace")
        cleanup_interval = seconds(cleanup_interval, "cleanup_interval", allow_zero=False)
        default_timeout = seconds(default_timeout, "default_timeout", allow_zero=False)
        max_threads = _count(max_threads, "max_threads")
        store_threads = _count(store_threads, "store_threads")
        if (
            isinstance(retention_days, bool)
            or not isinstance(retention_days, int | float)
            or not 0 < retention_days <= MAX_RETENTION_DAYS
        ):
            raise ValidationError(
                f"retention_days must be a number of days above 0 and at most "
                f"{MAX_RETENTION_DAYS}, not {retention_days!r}",
                field="retention_days",
            )
        if registry is not None and not isinstance(registry, TaskRegistry):
            raise ValidationError("registry must be a TaskRegistry", field="registry")
        if clock is not None and not (
            callable(getattr(clock, "now", None)) and callable(getattr(clock, "sleep_until", None))
        ):
            raise ValidationError(
                "clock must be a Clock (SystemClock, ManualClock, or one with now() "
                "and sleep_until())",
                field="clock",
            )
        if not isinstance(engine, bool) or not isinstance(engine_thread, bool):
            raise ValidationError("engine and engine_thread must be True or False", field="engine")
        parse_url(url)  # a malformed URL is refused here, as a bad option is, not at start
        self.url = url
        self.registry = registry if registry is not None else REGISTRY
        self.clock: Clock = clock or SystemClock()
        self.events = EventBus()
        self.node_id = node_id()
        self._run_engine = engine
        # ``config``: every engine setting at once (the keyword arguments above, which
        # must then keep their defaults, plus the tuning: fire_batch, fire_ahead, ...).
        self._config = engine_config(
            config,
            max_concurrent=max_concurrent,
            lease_ttl=lease_ttl,
            shutdown_grace=shutdown_grace,
            retention_days=retention_days,
            cleanup_interval=cleanup_interval,
            default_timeout=default_timeout,
            default_retry=parse_retry(default_retry),
            max_threads=max_threads,
        )
        self._store_threads = store_threads
        self._store: Store | None = None
        self._db: StoreCalls | None = None
        self._engine_db: StoreCalls | None = None
        self._engine_thread = engine_thread
        self._engine_loop: EngineLoop | None = None
        self._home_loop: asyncio.AbstractEventLoop | None = None
        self.engine: Engine | None = None
        self._yielded_at = 0.0  # time.monotonic() when _add last let the loop run
        self._touched: dict[str, float] = {}  # token id -> time.monotonic() of last write

    @property
    def stuck_threads(self) -> int:
        """Threads of this process's node still running a sync task whose attempt ended
        (timed out or cancelled): each was replaced, so they hold no slot, but a count
        that keeps growing says a task ignores ``ctx.cancelled``."""
        return 0 if self.engine is None else self.engine.executors.threads.stuck

    @property
    def stuck_coroutines(self) -> int:
        """Async tasks of this process's node given up after they ignored their
        cancellation (timeout, cancel request, takeover, shutdown) and still running on
        its event loop: they hold no slot, but each holds what its task holds, and a
        count that keeps growing says a task catches ``asyncio.CancelledError`` and goes
        on instead of returning."""
        return 0 if self.engine is None else self.engine.execution.given_up

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store (applying migrations) and, with ``engine=True``, start this
        process's node. A start that fails leaves nothing open: it may be tried again."""
        if self._store is not None:
            return
        try:
            await self._start()
        except BaseException:
            await self._release()
            raise

    async def _start(self) -> None:
        self._db = StoreCalls(self._store_threads)
        self._store = await self._db(open_store, self.url)
        if self._run_engine:
            from tickwork.engine.runtime import Engine  # a client never loads the engine

            # The engine's store calls get threads of their own: a burst of client calls
            # (the REST API under load) queues behind itself, never in front of a fire.
            self._engine_db = StoreCalls(self._store_threads)
            engine = Engine(
                self.store,
                self._engine_db,
                self.registry,
                self.clock,
                self.events,
                self._config,
                self.node_id,
            )
            if self._engine_thread:
                self._engine_loop = EngineLoop()
                await self._engine_loop.run(engine.start())
            else:
                await engine.start()
                self._home_loop = asyncio.get_running_loop()
            self.engine = engine

    async def _release(self) -> None:
        """Close what a failed start opened (its node never started)."""
        if self._engine_loop is not None:
            self._engine_loop.close()
            self._engine_loop = None
        if self._engine_db is not None:
            self._engine_db.shutdown()
            self._engine_db = None
        db, store = self._db, self._store
        self._db = self._store = None
        self._home_loop = None
        if db is not None:
            if store is not None:
                await db(store.close)
            db.shutdown()

    async def stop(self, grace: float | None = None) -> None:
        home = self._home_loop
        if home is not None and home is not asyncio.get_running_loop():
            if not home.is_closed():
                self._check_loop()  # refused: the node's loop still runs, elsewhere
            self._home_loop = None
            if self.engine is not None:
                # The node's loop is gone, and its tasks with it: stop its threads and
                # say it stopped, so it is not counted as a live node.
                log.warning("the event loop of node %s closed before it stopped", self.node_id)
                engine, self.engine = self.engine, None
                await asyncio.to_thread(engine.abandon)
                await self._call(self.store.deregister_node, self.node_id, self.clock.now())
        self._home_loop = None
        if self.engine is not None:
            if self._engine_loop is not None:
                await self._engine_loop.run(self.engine.stop(grace))
                self._engine_loop.close()
                self._engine_loop = None
            else:
                await self.engine.stop(grace)
            self.engine = None
        if self._engine_db is not None:
            self._engine_db.shutdown()
            self._engine_db = None
        if self._store is not None and self._db is not None:
            # The store calls still running end first: closing a connection another
            # thread is using fails that call with the driver's own error, or crashes
            # the interpreter (sqlite3).
            await asyncio.to_thread(self._db.shutdown)
            await asyncio.to_thread(self._store.close)
        self._store = None
        self._db = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- schedules ---------------------------------------------------------------------

    async def add_schedule(
        self,
        /,
        task: str,
        schedule: str,
        *,
        id: str | None = None,
        replace_existing: bool = False,
        **fields: Any,
    ) -> Schedule:
        """Create a schedule; ``fields`` are the settable fields of a schedule
        (``tickwork.validation.SETTABLE_FIELDS``).

        Refuses unknown tasks (with the known ones listed), data that does not fit the
        task's signature, and any invalid field, naming it; the error's ``problems``
        name every field at fault. With ``replace_existing`` an
        existing id is updated instead (an upsert).
        """
        given = {"task": task, "schedule": schedule, **fields}
        try:
            schedule_id = check_id(id) if id is not None else new_id()
        except ValidationError as exc:
            await self._refuse(exc, given, schedule_id=id)
            raise
        if not isinstance(replace_existing, bool):
            raise ValidationError(
                "replace_existing must be True or False", field="replace_existing"
            )
        if replace_existing and await self._call(self.store.get_schedule, schedule_id) is not None:
            return await self.update_schedule(schedule_id, **given)
        try:
            record = await self._new_record(schedule_id, given)
        except (ValidationError, ScheduleError) as exc:
            await self._refuse(exc, given, schedule_id=id)
            raise
        audit = self._audit("schedule.created", f"schedule:{schedule_id}", after=record.to_dict())
        try:
            stored = await self._add(record, audit)
        except ConflictError:
            raise ConflictError(f"schedule {schedule_id!r} already exists") from None
        if stored.status == "active" and stored.next_fire_at is not None:
            self._changed(stored.next_fire_at)
        if self.events.has_subscribers:
            self._emit("schedule.created", stored.id, task=stored.task, schedule=stored.schedule)
        return stored

    async def _new_record(self, schedule_id: str, given: dict[str, Any]) -> Schedule:
        """The record of a new schedule of the fields ``given``, with its first fire;
        raises on the first field at fault (``add_schedule`` then names them all)."""
        now = self.clock.now()
        task = given["task"]
        if not isinstance(task, str) or not task.strip():
            raise ValidationError("task must be a non-empty task name", field="task")
        spec = await self.task_spec(task.strip())
        record, parsed = new_schedule(schedule_id, self._task_defaults(spec) | given, now)
        record = self._show_node_defaults(record)
        spec.check_data(record.data)
        return record.replace(**self._timing(parsed, record, now, first=True))

    async def _add(self, record: Schedule, audit: AuditEntry) -> Schedule:
        """Commit a new schedule: on this thread when the store can do it without
        waiting (``Store.try_add_schedule``, which SQLite offers; it saves the hop to a
        store thread and back, most of an add's cost), else on a store thread."""
        store = self.store
        stored = store.try_add_schedule(record, audit)
        if stored is not None:
            # Adds one after another never suspend now: let the rest of the loop
            # (the engine, lease renewals, other requests) run every millisecond.
            clock = time.monotonic()
            if clock - self._yielded_at >= INLINE_YIELD_EVERY:
                await asyncio.sleep(0)
                self._yielded_at = time.monotonic()
            return stored
        added: Schedule = await self._call(store.add_schedule, record, audit)
        return added

    # -- events ------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of this process (an ``async def``
        callback is awaited in a task of its own); returns unsubscribe."""
        if not callable(callback):
            raise ValidationError(
                f"callback must be callable (a function taking an Event), not {callback!r}",
                field="callback",
            )
        return self.events.subscribe(callback)


def _count(value: Any, name: str) -> int:
    """A count of things a node uses (slots, threads)."""
    return integer(value, name, minimum=1, maximum=MAX_NODE_COUNT) or 0


class EngineLoop:
    """An event loop on a thread of its own, for the engine of a process whose main
    loop is busy with other work (``tickwork serve``: the HTTP server). Each await of the
    engine then waits for the interpreter's thread switch (milliseconds), not for a
    turn of a loop crowded with requests, so the API under load does not delay fires."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="tickwork-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the engine's loop and wait for it from the caller's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()
