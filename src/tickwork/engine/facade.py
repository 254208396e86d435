"""What every part of the ``Scheduler`` facade shares: its state, the call of a store
method on a store thread, the audit entry and event of a change, the tasks known, and
the timing (next fire, status) of a new or changed schedule.

``Scheduler`` (``engine/scheduler.py``) is composed of this base and one class per
concern: ``ScheduleCalls`` (``facade_schedules.py``), ``RunCalls`` (``facade_runs.py``)
and ``AdminCalls`` (``facade_admin.py``: queues, stats, nodes, tokens, audit, the
dashboard's summaries).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from tickwork.engine.audit import current_actor
from tickwork.engine.events import Event, EventBus
from tickwork.engine.registry import TaskRegistry
from tickwork.errors import (
    FieldProblem,
    NotFoundError,
    PreconditionFailedError,
    ScheduleError,
    TickworkError,
    UnknownTaskError,
    ValidationError,
    add_problems,
)
from tickwork.limits import echo
from tickwork.models import (
    JSON,
    RUN_STATUSES,
    AuditEntry,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    TaskSpec,
)
from tickwork.policy import first_fire, next_fire
from tickwork.schedule import ParsedSchedule
from tickwork.store.base import Store
from tickwork.validation import check_id, field_problems, integer, json_object

if TYPE_CHECKING:
    from tickwork.clock import Clock
    from tickwork.engine.config import EngineConfig
    from tickwork.engine.runtime import Engine
    from tickwork.engine.scheduler import EngineLoop
    from tickwork.engine.storecalls import StoreCalls

P = ParamSpec("P")
T = TypeVar("T")


class SchedulerBase:
    """The state and helpers of ``Scheduler`` that its parts use (set by its
    ``__init__`` and ``start``)."""

    url: str
    registry: TaskRegistry
    clock: Clock
    events: EventBus
    node_id: str
    engine: Engine | None
    _config: EngineConfig
    _store: Store | None
    _db: StoreCalls | None
    _engine_loop: EngineLoop | None
    #: The event loop this process's node runs on, when it runs on the caller's.
    _home_loop: asyncio.AbstractEventLoop | None
    _touched: dict[str, float]

    @property
    def config(self) -> EngineConfig:
        """The engine settings this scheduler was made with (its node's, when it runs
        one; ``lease_ttl`` tells a reader how long a node may stay silent)."""
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the scheduler is not started: use 'async with Scheduler(...)'")
        if self._home_loop is not None:
            self._check_loop()
        return self._store

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a store thread (the store is synchronous)."""
        if self._db is None:
            raise RuntimeError("the scheduler is not started: use 'async with Scheduler(...)'")
        if self._home_loop is not None:
            self._check_loop()
        return await self._db(fn, *args, **kwargs)

    def _check_loop(self) -> None:
        """Refuse a call from another event loop than the node's: its work would wait
        for a node whose loop is gone (``asyncio.run(scheduler.start())`` then another
        ``asyncio.run(...)``) or belongs to another thread."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller (the store's own helpers)
            current = None
        if current is not None and current is not self._home_loop:
            raise RuntimeError(
                "this Scheduler's node runs on the event loop it was started on, not on "
                "this one: start it and use it within one asyncio.run(...) (async with "
                "Scheduler(...) inside it), or use SyncScheduler from synchronous code"
            )

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

    def _emit_run_cancelled(self, run: Run) -> None:
        """A waiting run cancelled here (``cancel_run``, a deleted schedule's) ends in
        this process, not on a node: no finisher tells the subscribers, so this does."""
        if self.events.has_subscribers:
            data = {
                "task": run.task,
                "attempt": run.attempt,
                "error": run.error,
                "duration": run.duration,
            }
            now = self.clock.now()
            self.events.emit(Event("run.cancelled", now, run.schedule_id, run.id, data))

    # -- tasks -------------------------------------------------------------------------

    async def known_tasks(self) -> list[str]:
        """Tasks registered here or published by any node, running or past."""
        published = await self._call(self.store.known_tasks)
        return sorted(published | set(self.registry.names()))

    async def task_spec(self, name: str) -> TaskSpec:
        """What is known of a task: from this process's registry, else as published by
        a node. Raises ``UnknownTaskError`` listing the known tasks."""
        local = self.registry.get(name)
        if local is not None:
            return local.spec
        spec = await self._call(self.store.task_spec, name)
        if spec is not None:
            return spec
        known = await self.known_tasks()
        if name not in known:
            raise UnknownTaskError(name, known)
        return TaskSpec(name=name, accepts_any=True)  # published before specs existed

    async def _refuse(
        self,
        error: ValidationError | ScheduleError,
        changes: Mapping[str, Any],
        current: Schedule | None = None,
        *,
        schedule_id: Any = None,
    ) -> None:
        """Add to ``error``, raised by a write of ``changes``, every other problem of
        theirs (``schedule_problems``), so the caller can fix them all at once."""
        add_problems(
            error, await schedule_problems(self, changes, current, schedule_id=schedule_id)
        )

    @staticmethod
    def _task_defaults(spec: TaskSpec) -> dict[str, Any]:
        return spec.schedule_defaults()

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

    def _with_timing(self, record: Schedule, now: datetime, *, first: bool) -> Schedule:
        """Compute ``next_fire_at`` and ``status`` for a new or changed schedule."""
        return record.replace(**self._timing(parsed_schedule(record), record, now, first=first))

    def _timing(
        self, parsed: ParsedSchedule, record: Schedule, now: datetime, *, first: bool
    ) -> dict[str, Any]:
        """``next_fire_at``, ``status`` and ``paused_at`` of a new or changed schedule."""
        if first:
            nxt = first_fire(parsed, record, now)
            end = record.end_at
            if nxt is None and end is not None and parsed.kind != "manual":
                # Refused as a one-time instant in the past is: it could never fire.
                unbounded = first_fire(parsed, record.replace(end_at=None), now)
                if unbounded is not None:
                    raise ValidationError(
                        f"the schedule would never fire: end_at "
                        f"{end.astimezone(parsed.tz).isoformat()} is before its first fire "
                        f"time {unbounded.astimezone(parsed.tz).isoformat()}",
                        field="end_at",
                    )
            at = getattr(parsed, "at", None)
            start = record.start_at
            if nxt is None and isinstance(at, datetime) and start is not None and at < start:
                raise ValidationError(
                    f"the schedule would never fire: its one-time instant "
                    f"{at.astimezone(parsed.tz).isoformat()} is before start_at "
                    f"{start.astimezone(parsed.tz).isoformat()}",
                    field="start_at",
                )
            if nxt is None and parsed.kind == "once":
                raise ValidationError(
                    f"the one-time schedule {record.schedule!r} is in the past "
                    f"(more than misfire_grace={record.misfire_grace:g} s ago)",
                    field="schedule",
                )
            count, most = record.execution_count, record.max_executions
            if most is not None and count >= most:  # a changed one that used its fires
                nxt = None
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
        found = await self._call(self.store.get_schedule, id_arg(schedule_id, "schedule_id"))
        if found is None:
            raise NotFoundError("schedule", schedule_id)
        return found


async def schedule_problems(
    scheduler: SchedulerBase,
    changes: Mapping[str, Any],
    current: Schedule | None = None,
    *,
    schedule_id: Any = None,
) -> list[FieldProblem]:
    """Every field of ``changes`` (to a new schedule with ``schedule_id``, or to
    ``current``) that ``add_schedule`` or ``update_schedule`` would refuse, each checked
    on its own (``validation.field_problems``), and the id, the task known, the data
    fitting the task. A write stops at the first; its error lists these all, and so
    does the REST API when a body's shape was refused before its meaning was read."""
    found: list[FieldProblem] = []
    if schedule_id is not None:
        try:
            check_id(schedule_id)
        except ValidationError as exc:
            found.append(FieldProblem(exc.field, str(exc)))
    zone = current.timezone if current is not None else "UTC"
    bad = field_problems(changes, zone)
    found += [FieldProblem(name, message) for name, message in bad.items()]
    task = changes["task"] if "task" in changes else getattr(current, "task", None)
    if "task" in bad or not isinstance(task, str) or not task.strip():
        return found
    if "task" not in changes and "data" not in changes:
        return found  # the stored data fits the stored task
    try:
        spec = await scheduler.task_spec(task.strip())
    except UnknownTaskError as exc:
        return [*found, FieldProblem("task", str(exc))]
    except TickworkError:  # the store failed: the problems found so far
        return found
    if "data" in bad:
        return found
    if "data" in changes:
        data = json_object(changes["data"], "data")
    else:
        data = current.data if current is not None else {}
    return found + spec.data_problems(data)


def parsed_schedule(schedule: Schedule) -> ParsedSchedule:
    """The parsed expression of a stored schedule (``engine.firing.parsed_schedule``,
    imported when first needed: a client that only reads never loads the engine)."""
    from tickwork.engine.firing import parsed_schedule as parsed

    return parsed(schedule)


def check_version(version: object) -> None:
    """A caller's ``expected_version``, or a ``ValidationError`` naming it."""
    if version is not None:
        integer(version, "expected_version", minimum=0, maximum=2**63 - 1)


def still_at_version(schedule: Schedule, expected_version: int | None) -> None:
    """``PreconditionFailedError`` unless ``schedule`` (as read) is at
    ``expected_version`` (None: any)."""
    if expected_version is not None and schedule.version != expected_version:
        raise PreconditionFailedError(
            f"schedule {schedule.id!r} is at version {schedule.version}, not "
            f"{expected_version}: it changed since it was read"
        )


def id_arg(value: Any, field: str) -> str:
    """An id a caller passed, or a ``ValidationError`` naming ``field``: an id is text
    (``None`` or a number finds nothing and says so; a coroutine is a forgotten
    ``await``, closed here so that Python does not warn about it later as well)."""
    if isinstance(value, str):
        return value
    hint = ""
    if inspect.isawaitable(value):
        hint = ": it is an awaitable; did you forget 'await'?"
        if inspect.iscoroutine(value):
            value.close()
    raise ValidationError(f"{field} must be a string, not {echo(value)}{hint}", field=field)


def filter_arg(value: Any, field: str) -> str | None:
    """A text filter a caller passed (None: no filter), or a ``ValidationError`` naming
    ``field``: a list or a number would otherwise reach the database as a parameter."""
    return None if value is None else id_arg(value, field)


def run_statuses_arg(value: Any) -> list[RunStatus] | None:
    """The ``status`` filter of ``list_runs``: one run status or a collection of them."""
    if value is None:
        return None
    if isinstance(value, str):
        given: list[Any] = [value]
    elif isinstance(value, Collection) and not isinstance(value, bytes | Mapping):
        given = list(value)
    else:
        raise ValidationError(
            f"status must be a run status or a list of them, not {echo(value)}", field="status"
        )
    for one in given:
        if not isinstance(one, str) or one not in RUN_STATUSES:
            raise ValidationError(
                f"status {echo(one)} is not one of {', '.join(RUN_STATUSES)}", field="status"
            )
    return cast("list[RunStatus]", given)
