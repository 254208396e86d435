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
from collections.abc import Callable, Collection, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from tickwork.clock import Clock, SystemClock
from tickwork.engine import tokens
from tickwork.engine.audit import current_actor
from tickwork.engine.config import EngineConfig, engine_config
from tickwork.engine.events import Event, EventBus, Subscriber
from tickwork.engine.ids import new_id, node_id
from tickwork.engine.registry import REGISTRY, TaskRegistry
from tickwork.engine.runtime import Engine, parsed_schedule
from tickwork.engine.storecalls import StoreCalls
from tickwork.engine.tracing import trace_id_of
from tickwork.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RunTimeoutError,
    StoreError,
    UnknownTaskError,
    ValidationError,
)
from tickwork.models import (
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TIMEOUT,
    JSON,
    ApiToken,
    AuditEntry,
    QueueMessage,
    RetryPolicy,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    TaskSpec,
    TaskStats,
)
from tickwork.policy import first_fire, next_fire
from tickwork.schedule import ParsedSchedule
from tickwork.store import open_store
from tickwork.store.base import Store
from tickwork.store.sqlite import SQLiteStore
from tickwork.validation import (
    build_schedule,
    check_id,
    json_object,
    new_schedule,
    parse_instant,
    parse_retry,
)

log = logging.getLogger("tickwork")
T = TypeVar("T")

DEFAULT_URL: Final = "sqlite:///tickwork.db"
MAX_BACKFILL: Final = 10_000
#: How long an Idempotency-Key of ``run_now`` returns the run it made.
IDEMPOTENCY_WINDOW: Final = timedelta(hours=24)
#: A token's ``last_used_at`` is written at most this often (a write per request would
#: make every read a write).
TOKEN_TOUCH_EVERY: Final = 60.0
#: Seconds of adds committed on the loop's thread (``Scheduler._add``) between two
#: chances for the rest of the loop to run.
INLINE_YIELD_EVERY: Final = 0.001
#: Fields whose change moves the next fire time.
_TIMING_FIELDS: Final = frozenset(
    {"schedule", "timezone", "start_at", "end_at", "max_executions", "paused"}
)


class Scheduler:
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
        lease_ttl: float = DEFAULT_LEASE_TTL,
        shutdown_grace: float = 30.0,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        cleanup_interval: float = 3600.0,
        default_timeout: float = DEFAULT_TIMEOUT,
        default_retry: RetryPolicy | dict[str, Any] | None = None,
        max_threads: int = 32,
        store_threads: int = 4,
        engine_thread: bool = False,
        config: EngineConfig | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValidationError("max_concurrent must be >= 1", field="max_concurrent")
        if lease_ttl <= 0:
            raise ValidationError("lease_ttl must be positive", field="lease_ttl")
        if cleanup_interval <= 0:
            raise ValidationError("cleanup_interval must be positive", field="cleanup_interval")
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
            default_timeout=_positive(default_timeout, "default_timeout"),
            default_retry=parse_retry(default_retry),
            max_threads=max_threads,
        )
        self._store_threads = store_threads
        self._store: Store | None = None
        self._db: StoreCalls | None = None
        self._engine_db: StoreCalls | None = None
        self._engine_thread = engine_thread
        self._engine_loop: EngineLoop | None = None
        self.engine: Engine | None = None
        self._yielded_at = 0.0  # time.monotonic() when _add last let the loop run
        self._touched: dict[str, float] = {}  # token id -> time.monotonic() of last write

    @property
    def stuck_threads(self) -> int:
        """Threads of this process's node still running a sync task whose attempt ended
        (timed out or cancelled): each was replaced, so they hold no slot, but a count
        that keeps growing says a task ignores ``ctx.cancelled``."""
        return 0 if self.engine is None else self.engine.executors.threads.stuck

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._store is not None:
            return
        self._db = StoreCalls(self._store_threads)
        self._store = await self._db(open_store, self.url)
        if self._run_engine:
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
            self.engine = engine

    async def stop(self, grace: float | None = None) -> None:
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
            await self._db(self._store.close)
            self._db.shutdown()
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

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the scheduler is not started: use 'async with Scheduler(...)'")
        return self._store

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._db is None:
            raise RuntimeError("the scheduler is not started: use 'async with Scheduler(...)'")
        return await self._db(fn, *args, **kwargs)

    def _changed(self, due_at: datetime | None = None) -> None:
        """Tell this process's engine; ``due_at``: the change only adds work due then."""
        if self.engine is not None:
            self.engine.wake(due_at)

    def _audit(
        self, action: str, target: str, before: JSON = None, after: JSON = None
    ) -> AuditEntry:
        """The audit entry of a change made now by the current actor (see ``acting_as``)."""
        actor, reason = current_actor()
        return AuditEntry(
            actor=actor,
            action=action,
            target=target,
            at=self.clock.now(),
            before=before,
            after=after,
            reason=reason,
        )

    def _emit(self, kind: str, schedule_id: str | None, **data: Any) -> None:
        self.events.emit(Event(kind, self.clock.now(), schedule_id, None, data))

    # -- tasks -------------------------------------------------------------------------

    async def known_tasks(self) -> list[str]:
        """Tasks registered here or published by any node, running or past."""
        published: set[str] = await self._call(self.store.known_tasks)
        return sorted(published | set(self.registry.names()))

    async def task_spec(self, name: str) -> TaskSpec:
        """What is known of a task: from this process's registry, else as published by
        a node. Raises ``UnknownTaskError`` listing the known tasks."""
        local = self.registry.get(name)
        if local is not None:
            return local.spec
        spec: TaskSpec | None = await self._call(self.store.task_spec, name)
        if spec is not None:
            return spec
        known = await self.known_tasks()
        if name not in known:
            raise UnknownTaskError(name, known)
        return TaskSpec(name=name, accepts_any=True)  # published before specs existed

    @staticmethod
    def _task_defaults(spec: TaskSpec) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if spec.timeout is not None:
            defaults["timeout"] = spec.timeout
        if spec.retries is not None:
            defaults["retry"] = RetryPolicy(max_attempts=spec.retries + 1)
        return defaults

    # -- schedules ---------------------------------------------------------------------

    async def add_schedule(
        self,
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
        task's signature, and any invalid field, naming it. With ``replace_existing`` an
        existing id is updated instead (an upsert).
        """
        schedule_id = check_id(id) if id is not None else new_id()
        if replace_existing and await self._call(self.store.get_schedule, schedule_id):
            return await self.update_schedule(schedule_id, task=task, schedule=schedule, **fields)
        now = self.clock.now()
        if not isinstance(task, str) or not task.strip():
            raise ValidationError("task must be a non-empty task name", field="task")
        spec = await self.task_spec(task.strip())
        changes: dict[str, Any] = self._task_defaults(spec) | {"task": task, "schedule": schedule}
        changes.update(fields)
        record, parsed = new_schedule(schedule_id, changes, now)
        record = self._show_node_defaults(record)
        spec.check_data(record.data)
        record = record.replace(**self._timing(parsed, record, now, first=True))
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

    def _show_node_defaults(self, record: Schedule) -> Schedule:
        """Fields the schedule leaves to the node hold this process's defaults: what a
        node configured like this one applies (each node applies its own at execution)."""
        if not record.node_defaults:
            return record
        shown: dict[str, Any] = {}
        if "timeout" in record.node_defaults:
            shown["timeout"] = self._config.default_timeout
        if "retry" in record.node_defaults:
            shown["retry"] = self._config.default_retry
        return record.replace(**shown)

    async def _add(self, record: Schedule, audit: AuditEntry) -> Schedule:
        """Commit a new schedule: on this thread when the store can do it without
        waiting (SQLite, see ``SQLiteStore.try_add_schedule``; it saves the hop to a
        store thread and back, most of an add's cost), else on a store thread."""
        store = self.store
        if isinstance(store, SQLiteStore):
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

    def _with_timing(self, record: Schedule, now: datetime, *, first: bool) -> Schedule:
        """Compute ``next_fire_at`` and ``status`` for a new or changed schedule."""
        return record.replace(**self._timing(parsed_schedule(record), record, now, first=first))

    def _timing(
        self, parsed: ParsedSchedule, record: Schedule, now: datetime, *, first: bool
    ) -> dict[str, Any]:
        """``next_fire_at``, ``status`` and ``paused_at`` of a new or changed schedule."""
        if first:
            nxt = first_fire(parsed, record, now)
            if nxt is None and parsed.kind == "once":
                raise ValidationError(
                    f"the one-time schedule {record.schedule!r} is in the past "
                    f"(more than misfire_grace={record.misfire_grace:g} s ago)",
                    field="schedule",
                )
        else:
            start = record.start_at
            after = now if start is None or start <= now else start - timedelta(microseconds=1)
            nxt = next_fire(parsed, record, after)
        status: ScheduleStatus
        if record.paused:
            status = "paused"
        elif nxt is None and parsed.kind != "manual":  # a manual one can always be run
            status = "finished"
        else:
            status = "active"
        return {
            # In UTC as the store returns it (no copy of the record to convert it).
            "next_fire_at": None if nxt is None else nxt.astimezone(UTC),
            "status": status,
            "paused_at": (record.paused_at or now) if record.paused else None,
        }

    async def get_schedule(self, schedule_id: str) -> Schedule:
        found: Schedule | None = await self._call(self.store.get_schedule, schedule_id)
        if found is None:
            raise NotFoundError("schedule", schedule_id)
        return found

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Schedule]:
        """Schedules matching every filter given, ordered by id (``after_id`` pages);
        ``q`` is a case-insensitive search in id, name, description and task."""
        result: list[Schedule] = await self._call(
            self.store.list_schedules,
            status=status,
            task=task,
            tag=tag,
            owner=owner,
            q=q,
            after_id=after_id,
            limit=limit,
        )
        return result

    async def upcoming_schedules(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Schedule]:
        """Active schedules in order of their next fire time (then id), ``limit`` at a
        time after ``after`` = (next_fire_at, id): an index read, however many there are."""
        result: list[Schedule] = await self._call(self.store.upcoming_schedules, limit, after)
        return result

    async def update_schedule(
        self, schedule_id: str, *, expected_version: int | None = None, **changes: Any
    ) -> Schedule:
        """Change settable fields; timing fields recompute the next fire from now.

        ``expected_version``: the ``version`` the caller read; if the schedule changed
        since, ``PreconditionFailedError`` and nothing changes."""
        current = await self.get_schedule(schedule_id)
        if expected_version is not None and current.version != expected_version:
            raise PreconditionFailedError(
                f"schedule {schedule_id!r} is at version {current.version}, not "
                f"{expected_version}: it changed since it was read"
            )
        now = self.clock.now()
        record = self._show_node_defaults(build_schedule(current, changes, now))
        if "task" in changes or "data" in changes:
            (await self.task_spec(record.task)).check_data(record.data)
        if _TIMING_FIELDS & set(changes) or (
            "paused" in changes and record.paused != current.paused
        ):
            if "start_at" in changes:
                record = record.replace(anchor=record.start_at or now)
            if record.paused and not current.paused:
                record = record.replace(paused_at=now)
            record = self._with_timing(record, now, first=False)
        record = record.replace(updated_at=now)
        audit = self._audit("schedule.updated", f"schedule:{schedule_id}", current.to_dict())
        stored: Schedule = await self._call(
            self.store.update_schedule, record, audit, current.version
        )
        self._changed()
        self._emit("schedule.updated", stored.id, changed=sorted(changes))
        return stored

    async def delete_schedule(
        self, schedule_id: str, *, expected_version: int | None = None
    ) -> None:
        """Delete the schedule; waiting runs are cancelled, history is kept.
        ``expected_version`` as for ``update_schedule``."""
        audit = self._audit("schedule.deleted", f"schedule:{schedule_id}")
        deleted = await self._call(
            self.store.delete_schedule, schedule_id, self.clock.now(), audit, expected_version
        )
        if not deleted:
            raise NotFoundError("schedule", schedule_id)
        self._changed()
        self._emit("schedule.deleted", schedule_id)

    async def pause(self, id: str | None = None) -> list[Schedule]:
        """Pause one schedule, or all (``id=None``). Runs already waiting or running go on."""
        return await self._set_paused(id, True)

    async def resume(self, id: str | None = None) -> list[Schedule]:
        """Resume one schedule, or all; fire times passed while paused are not caught up."""
        return await self._set_paused(id, False)

    async def _set_paused(self, schedule_id: str | None, paused: bool) -> list[Schedule]:
        if schedule_id is not None:
            await self.get_schedule(schedule_id)
        action = "schedule.paused" if paused else "schedule.resumed"
        changed: list[Schedule] = await self._call(
            self.store.set_paused,
            None if schedule_id is None else [schedule_id],
            paused,
            self.clock.now(),
            _next_fire,
            self._audit(action, "schedule:*"),
        )
        self._changed()
        for s in changed:
            self._emit("schedule.paused" if paused else "schedule.resumed", s.id)
        return changed

    async def next_fire_times(
        self, schedule_id: str, count: int = 5, *, after: datetime | str | None = None
    ) -> list[datetime]:
        """The schedule's next ``count`` fire times (empty when paused or finished); with
        ``after`` (naive = in the schedule's zone), its fire times strictly after it."""
        if count < 1 or count > 1000:
            raise ValidationError("count must be between 1 and 1000", field="count")
        s = await self.get_schedule(schedule_id)
        if s.status != "active" or s.next_fire_at is None:
            return []
        parsed = parsed_schedule(s)
        begin = parse_instant(after, "after", s.timezone)
        if begin is not None:
            first = next_fire(parsed, s, begin)
            if first is None:
                return []
            times = [first]
        else:
            times = [s.next_fire_at.astimezone(parsed.tz)]
        executions = s.execution_count + 1
        while len(times) < count:
            if s.max_executions is not None and executions >= s.max_executions:
                break
            nxt = next_fire(parsed, s, times[-1])
            if nxt is None:
                break
            times.append(nxt)
            executions += 1
        return times

    # -- runs --------------------------------------------------------------------------

    async def run_now(
        self,
        schedule_id: str,
        data: dict[str, JSON] | None = None,
        wait: bool = False,
        timeout: float | None = None,
        traceparent: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Run:
        """Trigger a run now, outside the schedule; ``data`` is merged over the schedule's.

        With ``wait`` returns the finished run (whichever node ran it); ``timeout``
        bounds the wait (``RunTimeoutError``). ``traceparent`` (a W3C trace context):
        the run joins that trace; its id is stored as ``run.trace_id``. With
        ``idempotency_key``, the same key from the same actor within 24 hours returns
        the run made the first time instead of making another.
        """
        trace_id = trace_id_of(traceparent)
        s = await self.get_schedule(schedule_id)
        if data is not None and not isinstance(data, dict):
            raise ValidationError("data must be a JSON object", field="data")
        merged = dict(s.data) | dict(data or {})
        if data:
            merged = json_object(merged, "data")
            (await self.task_spec(s.task)).check_data(merged)
        now = self.clock.now()
        run = Run(
            id=new_id(),
            schedule_id=s.id,
            task=s.task,
            scheduled_for=now,
            trigger="manual",
            data=merged,
            due_at=now,
            priority=s.priority,
            timeout=s.timeout,
            retry=s.retry,
            node_defaults=s.node_defaults,
            created_at=now,
            trace_id=trace_id,
            schedule_version=s.version,
        )
        audit = self._audit("schedule.run", f"schedule:{s.id}", after={"data": merged})
        if idempotency_key is not None:
            created = await self._run_once(s, run, idempotency_key, audit)
        else:
            inserted: list[Run] = await self._call(self.store.insert_runs, s, [run], audit)
            created = inserted[0] if inserted else run
        self._changed()
        if wait:
            return await self.wait_for_run(created.id, timeout=timeout)
        return created

    async def _run_once(self, s: Schedule, run: Run, key: str, audit: AuditEntry) -> Run:
        if not isinstance(key, str) or not key or len(key) > 255:
            raise ValidationError(
                "an idempotency key is 1 to 255 characters", field="idempotency_key"
            )
        scope = audit.actor
        window_start = self.clock.now() - IDEMPOTENCY_WINDOW
        for attempt in range(3):
            try:
                found: tuple[Run, bool] = await self._call(
                    self.store.insert_run_once, s, run, (scope, key), window_start, audit
                )
                return found[0]
            except ConflictError:
                # Two requests with one key at once (PostgreSQL): the loser's insert
                # failed on the key and the next try finds the winner's run. A key used
                # for another schedule fails again, and the last try raises it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def wait_for_run(self, run_id: str, timeout: float | None = None) -> Run:
        """Return the run once it is over (succeeded, failed, ...)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.01
        while True:
            run = await self.get_run(run_id)
            if run.done:
                return run
            if deadline is not None and loop.time() >= deadline:
                raise RunTimeoutError(f"run {run_id} is still {run.status} after {timeout:g} s")
            pause = delay if deadline is None else min(delay, max(deadline - loop.time(), 0))
            await asyncio.sleep(pause)
            delay = min(delay * 1.5, 0.25)

    async def get_run(self, run_id: str) -> Run:
        found: Run | None = await self._call(self.store.get_run, run_id)
        if found is None:
            raise NotFoundError("run", run_id)
        return found

    async def list_runs(
        self,
        schedule_id: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
        limit: int = 100,
        *,
        task: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: str | None = None,
        owner: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Runs, newest ``scheduled_for`` first; ``owner``: of that user's schedules;
        ``before`` (scheduled_for, id) pages (see ``Store.list_runs``)."""
        if limit < 1 or limit > 10_000:
            raise ValidationError("limit must be between 1 and 10000", field="limit")
        result: list[Run] = await self._call(
            self.store.list_runs,
            schedule_id=schedule_id,
            task=task,
            status=status,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
            owner=owner,
            before=before,
        )
        return result

    async def cancel_run(self, run_id: str) -> Run:
        """Cancel a waiting run at once, or ask the node running it to stop it."""
        audit = self._audit("run.cancelled", f"run:{run_id}")
        run: Run = await self._call(self.store.cancel_run, run_id, self.clock.now(), audit)
        engine = self.engine
        if engine is not None:
            if self._engine_loop is not None:
                self._engine_loop.loop.call_soon_threadsafe(engine.request_cancel, run_id)
            else:
                engine.request_cancel(run_id)
        self._changed()
        return run

    async def backfill(
        self, schedule_id: str, start: datetime | str, end: datetime | str
    ) -> list[Run]:
        """Create a run (trigger ``backfill``) for every fire time in [start, end] that has
        none yet; the unique key makes a repeated backfill add nothing."""
        s = await self.get_schedule(schedule_id)
        begin = parse_instant(start, "start", s.timezone)
        finish = parse_instant(end, "end", s.timezone)
        if begin is None or finish is None:
            raise ValidationError("backfill needs a start and an end", field="start")
        if finish < begin:
            raise ValidationError("end is before start", field="end")
        parsed = parsed_schedule(s)
        times: list[datetime] = []
        t = parsed.next_after(begin - timedelta(microseconds=1))
        while t is not None and t <= finish:
            times.append(t)
            if len(times) > MAX_BACKFILL:
                raise ValidationError(
                    f"backfill would create more than {MAX_BACKFILL} runs; use a shorter range",
                    field="end",
                )
            t = parsed.next_after(t)
        now = self.clock.now()
        runs = [
            Run(
                id=new_id(),
                schedule_id=s.id,
                task=s.task,
                scheduled_for=t,
                trigger="backfill",
                data=dict(s.data),
                due_at=now,
                priority=s.priority,
                timeout=s.timeout,
                retry=s.retry,
                node_defaults=s.node_defaults,
                created_at=now,
                schedule_version=s.version,
            )
            for t in times
        ]
        audit = self._audit(
            "schedule.backfilled",
            f"schedule:{s.id}",
            after={"start": begin.isoformat(), "end": finish.isoformat()},
        )
        inserted: list[Run] = await self._call(self.store.insert_runs, s, runs, audit)
        self._changed()
        return inserted

    # -- queues, stats, nodes ------------------------------------------------------------

    async def read_queue(
        self, name: str, consume: bool = True, limit: int = 100, *, owner: str | None = None
    ) -> list[QueueMessage]:
        """Messages of a queue, oldest first (``owner``: only of that user's schedules)."""
        result: list[QueueMessage] = await self._call(
            self.store.read_queue, name, consume=consume, limit=limit, owner=owner
        )
        return result

    async def stats(
        self, since: datetime | None = None, *, owner: str | None = None
    ) -> dict[str, Any]:
        """Per-task run counts, success rate and p50/p95 duration; runs per status.
        ``owner``: over that user's schedules only."""
        tasks: list[TaskStats] = await self._call(self.store.task_stats, since, owner)
        return {"tasks": [t.to_dict() for t in tasks], **await self.counts(owner=owner)}

    async def active_runs(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Runs pending, running, retrying and due (``backlog``), and the running runs'
        ids by node: what ``tickwork status`` shows, from indexes only."""
        result: tuple[dict[str, int], dict[str, list[str]]] = await self._call(
            self.store.active_runs, self.clock.now()
        )
        return result

    async def counts(self, *, owner: str | None = None) -> dict[str, Any]:
        """Runs per status (with ``backlog``: waiting and due) and schedules per status:
        the part of ``stats`` that does not read every run's duration."""
        runs: dict[str, int] = await self._call(self.store.count_runs, self.clock.now(), owner)
        return {"runs": runs, "schedules": await self.schedule_counts(owner=owner)}

    async def schedule_counts(self, *, owner: str | None = None) -> dict[str, int]:
        """Schedules per status (those with any)."""
        counts: dict[str, int] = await self._call(self.store.count_schedules, owner)
        return {k: v for k, v in counts.items() if v}

    async def nodes(self, include_stopped: bool = False) -> list[Any]:
        result: list[Any] = await self._call(self.store.list_nodes, include_stopped=include_stopped)
        return result

    async def cleanup(self, older_than_days: float | None = None) -> int:
        """Delete finished runs older than ``retention_days``; returns how many."""
        days = self._config.retention_days if older_than_days is None else older_than_days
        cutoff = self.clock.now() - timedelta(days=days)
        deleted: int = await self._call(self.store.delete_runs_before, cutoff)
        return deleted

    async def upgrade(self) -> list[int]:
        applied: list[int] = await self._call(self.store.upgrade)
        return applied

    # -- tokens and audit ----------------------------------------------------------------

    async def create_token(
        self,
        user: str,
        *,
        admin: bool = False,
        read_only: bool = False,
        expires_in: timedelta | None = None,
        only_if_none: bool = False,
    ) -> tuple[ApiToken, str] | None:
        """Make an API token; returns it with its secret, which is shown once and never
        stored. ``only_if_none``: only when no token exists (None otherwise)."""
        if not isinstance(user, str) or not user.strip() or len(user) > 200:
            raise ValidationError("user must be a non-empty name", field="user")
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValidationError("expiry must be in the future", field="expires")
        now = self.clock.now()
        token_id, secret = tokens.new_token()
        token = ApiToken(
            id=token_id,
            user=user.strip(),
            created_at=now,
            admin=admin,
            read_only=read_only,
            expires_at=None if expires_in is None else now + expires_in,
        )
        audit = self._audit("token.created", f"token:{token_id}")
        if only_if_none:
            made: bool = await self._call(
                self.store.create_first_token, token, tokens.token_hash(secret), audit
            )
            return (token, secret) if made else None
        await self._call(self.store.create_token, token, tokens.token_hash(secret), audit)
        return token, secret

    async def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        found: list[ApiToken] = await self._call(
            self.store.list_tokens, include_revoked=include_revoked
        )
        return found

    async def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token; it is refused from the next request on."""
        audit = self._audit("token.revoked", f"token:{token_id}")
        revoked: ApiToken = await self._call(
            self.store.revoke_token, token_id, self.clock.now(), audit
        )
        return revoked

    async def check_token(self, secret: str) -> ApiToken | None:
        """The token whose secret this is, if it is usable now (not revoked, not
        expired); None otherwise. Records its use (at most once a minute)."""
        token_id = tokens.token_id_of(secret)
        if token_id is None:
            return None
        found: tuple[ApiToken, str] | None = await self._call(self.store.get_token, token_id)
        if found is None:
            return None
        token, stored_hash = found
        if not tokens.same_secret(tokens.token_hash(secret), stored_hash):
            return None
        now = self.clock.now()
        if not token.usable(now):
            return None
        clock = time.monotonic()
        if clock - self._touched.get(token.id, -TOKEN_TOUCH_EVERY) >= TOKEN_TOUCH_EVERY:
            self._touched[token.id] = clock
            try:
                await self._call(self.store.touch_token, token.id, now)
            except StoreError as exc:  # a busy database must not refuse the request
                log.warning("could not record the use of token %s: %s", token.id, exc)
        return token

    async def audit_log(
        self,
        *,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first. ``target`` is ``kind:id`` (``schedule:daily``)
        or a bare id, which matches any kind."""
        if limit < 1 or limit > 10_000:
            raise ValidationError("limit must be between 1 and 10000", field="limit")
        found: list[AuditEntry] = await self._call(
            self.store.list_audit,
            actor=actor,
            target=target,
            since=since,
            before_id=before_id,
            limit=limit,
        )
        return found

    # -- the dashboard's summaries -------------------------------------------------------

    async def schedule_page(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Schedule], int]:
        """One page of the matching schedules in ``sort`` order, and how many match."""
        result: tuple[list[Schedule], int] = await self._call(
            self.store.schedule_page,
            status=status,
            task=task,
            tag=tag,
            owner=owner,
            q=q,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )
        return result

    async def schedule_ids(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
    ) -> list[str]:
        """The ids of every schedule matching the filters."""
        result: list[str] = await self._call(
            self.store.schedule_ids, status=status, task=task, tag=tag, owner=owner, q=q
        )
        return result

    async def count_schedules(self, owner: str | None = None) -> dict[str, int]:
        """Schedules per status."""
        result: dict[str, int] = await self._call(self.store.count_schedules, owner)
        return result

    async def run_activity(
        self, since: datetime, bucket_seconds: int, owner: str | None = None
    ) -> list[tuple[int, str, int, float | None, float | None]]:
        """Runs since ``since`` per time bucket and status, with mean and max durations."""
        result: list[tuple[int, str, int, float | None, float | None]] = await self._call(
            self.store.run_activity, since, bucket_seconds, owner
        )
        return result

    async def recent_runs(
        self, schedule_ids: Sequence[str], per_schedule: int = 20, owner: str | None = None
    ) -> dict[str, list[tuple[str, str, datetime]]]:
        """The newest runs of each schedule as (id, status, scheduled_for), oldest first."""
        result: dict[str, list[tuple[str, str, datetime]]] = await self._call(
            self.store.recent_runs, schedule_ids, per_schedule, owner
        )
        return result

    # -- events ------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of this process; returns unsubscribe."""
        return self.events.subscribe(callback)


def _positive(value: float, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValidationError(f"{name} must be a positive number of seconds", field=name)
    return float(value)


def _next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    return next_fire(parsed_schedule(schedule), schedule, after)


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
