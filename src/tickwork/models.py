"""Plain records: what a schedule, a run and an attempt are, and their statuses.

These are frozen values. The store builds them from rows; the engine and the edges
read them. Nothing here talks to a database or reads the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

from tickwork.data_types import ArgType as ArgType
from tickwork.errors import FieldProblem, ValidationError

JSON = Any
"""A value that ``json.dumps`` accepts: dict, list, str, int, float, bool or None."""

OverlapPolicy = Literal["allow", "skip", "queue", "buffer_one", "replace"]
CatchupPolicy = Literal["none", "all", "latest", "spread"]
ScheduleStatus = Literal["active", "paused", "finished"]
RunTrigger = Literal["schedule", "manual", "catchup", "backfill"]
RunStatus = Literal[
    "pending",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "missed",
    "lost",
]
AttemptStatus = Literal["running", "succeeded", "failed", "timed_out", "cancelled", "lost"]
#: How a node reports an attempt ended (``lost`` is decided by recovery, never reported).
AttemptEndStatus = Literal["succeeded", "failed", "timed_out", "cancelled"]

OVERLAP_POLICIES: Final = ("allow", "skip", "queue", "buffer_one", "replace")
CATCHUP_POLICIES: Final = ("none", "all", "latest", "spread")
SCHEDULE_STATUSES: Final = ("active", "paused", "finished")
RUN_STATUSES: Final = (
    "pending",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "missed",
    "lost",
)
#: A run in one of these may still execute; it counts against overlap and limits.
ACTIVE_RUN_STATUSES: Final = frozenset({"pending", "running", "retrying"})
#: A run in one of these is over for good.
FINAL_RUN_STATUSES: Final = frozenset(RUN_STATUSES) - ACTIVE_RUN_STATUSES

DEFAULT_MISFIRE_GRACE: Final = 30.0
DEFAULT_TIMEOUT: Final = 300.0
DEFAULT_LEASE_TTL: Final = 30.0
DEFAULT_MAX_CONCURRENT: Final = 100
DEFAULT_RETENTION_DAYS: Final = 30
#: Fields a schedule may leave to the node that executes its runs.
NODE_DEFAULT_FIELDS: Final = ("retry", "timeout")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed attempt is retried: ``delay * backoff**(attempt-1)``, capped, jittered.

    ``max_attempts`` counts the first attempt: 3 means one try and two retries.
    ``jitter=True`` is full jitter (a delay drawn in [0, computed]).
    """

    max_attempts: int = 3
    delay: float = 5.0
    backoff: float = 2.0
    max_delay: float = 3600.0
    jitter: bool = True

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict is slow and this runs once per stored run.
        return {
            "max_attempts": self.max_attempts,
            "delay": self.delay,
            "backoff": self.backoff,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
        }


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule: when a task runs and how."""

    id: str
    task: str
    schedule: str
    name: str = ""
    description: str = ""
    timezone: str = "UTC"
    data: dict[str, JSON] = field(default_factory=dict)
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: float = 0.0
    paused: bool = False
    overlap: OverlapPolicy = "skip"
    catchup: CatchupPolicy = "latest"
    catchup_spread: float = 60.0
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    max_instances: int = 1
    max_executions: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = DEFAULT_TIMEOUT
    priority: int = 0
    result_queue: str | None = None
    error_queue: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, JSON] = field(default_factory=dict)
    owner: str | None = None
    # read-only, maintained by the store and the engine
    status: ScheduleStatus = "active"
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    execution_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The instant interval steps count from (``start_at`` or the creation time).
    anchor: datetime | None = None
    #: When the schedule was last paused; fires missed while paused are not caught up.
    paused_at: datetime | None = None
    #: The revision of the schedule's settings: 1 when created, +1 with every change a
    #: user makes (update, pause, resume), never with a fire. Runs record the revision
    #: that produced them; the REST API sends it as the ``ETag``.
    version: int = 1
    #: The fields of ``NODE_DEFAULT_FIELDS`` this schedule does not set: each of its runs
    #: takes them from the node that executes it (``Scheduler(default_retry=...,
    #: default_timeout=...)``, ``tickwork worker --default-timeout``). ``retry`` and
    #: ``timeout`` then show the defaults of the process that last wrote the schedule.
    node_defaults: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Schedule:
        return _fast_replace(self, changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO-8601 with offset. Spelled out (ten times
        faster than ``dataclasses.asdict``): every add writes one to the audit log."""
        out: dict[str, Any] = {}
        for name in _SCHEDULE_FIELD_NAMES:
            value = getattr(self, name)
            if value is None or type(value) in _PLAIN:
                out[name] = value
            elif isinstance(value, datetime):
                out[name] = value.isoformat()
            elif isinstance(value, RetryPolicy):
                out[name] = value.to_dict()
            else:
                out[name] = _jsonable(value)
        return out


_SCHEDULE_FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(Schedule))
_PLAIN: Final = frozenset({str, int, float, bool})


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line a task emitted during an attempt."""

    at: datetime
    level: str
    logger: str
    message: str
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a run on one node."""

    number: int
    status: AttemptStatus
    started_at: datetime
    finished_at: datetime | None = None
    node: str | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        d = _json_dict(dataclasses.asdict(self))
        d["duration"] = self.duration
        return d


@dataclass(frozen=True, slots=True)
class Run:
    """One occurrence of a schedule: the task for one scheduled time, with its attempts."""

    id: str
    schedule_id: str | None
    task: str
    scheduled_for: datetime
    trigger: RunTrigger = "schedule"
    data: dict[str, JSON] = field(default_factory=dict)
    status: RunStatus = "pending"
    attempt: int = 0
    attempts: tuple[Attempt, ...] = ()
    #: When the run may start: ``scheduled_for`` plus jitter, or the retry time.
    due_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: JSON = None
    error: str | None = None
    traceback: str | None = None
    node: str | None = None
    trace_id: str | None = None
    #: The span id (16 hex digits) of the caller's span that triggered the run, from
    #: its ``traceparent``: the parent of every attempt's span.
    parent_span_id: str | None = None
    logs: tuple[LogRecord, ...] = ()
    priority: int = 0
    lease_until: datetime | None = None
    cancel_requested: bool = False
    created_at: datetime | None = None
    #: Copied from the schedule when the run is created, so every node executes the
    #: run with the same settings even if the schedule changes meanwhile.
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: The schedule's ``version`` (its settings' revision) that produced the run.
    schedule_version: int | None = None
    #: Copied from the schedule: which of ``retry`` and ``timeout`` the executing node's
    #: defaults replace.
    node_defaults: tuple[str, ...] = ()

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def done(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    def replace(self, **changes: Any) -> Run:
        return _fast_replace(self, changes)

    def to_dict(self) -> dict[str, Any]:
        d = _json_dict(dataclasses.asdict(self))
        d["duration"] = self.duration
        d["attempts"] = [a.to_dict() for a in self.attempts]
        return d


@dataclass(frozen=True, slots=True)
class Node:
    """A tickwork process that executes runs."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    tasks: tuple[str, ...] = ()
    is_leader: bool = False
    running: int = 0
    stopped_at: datetime | None = None
    #: Threads still running a sync task the node gave up on (timed out, cancelled), as
    #: of its last heartbeat: each was replaced, but holds what its task holds.
    stuck_threads: int = 0
    #: Async tasks the node gave up on (they ignored their cancellation for
    #: ``stop_grace``) still running on its event loop, as of its last heartbeat.
    stuck_coroutines: int = 0
    #: The lease (seconds) the node renews: silent longer than this, it is not alive.
    #: None for a node registered by a tickwork that did not record it.
    lease_ttl: float | None = None

    def lease(self, fallback: float = DEFAULT_LEASE_TTL) -> float:
        """The node's own ``lease_ttl``, or ``fallback`` when it was not recorded."""
        return fallback if self.lease_ttl is None else self.lease_ttl

    def silent_for(self, now: datetime) -> float:
        """Seconds since the node last renewed its heartbeat."""
        return (now - self.heartbeat_at).total_seconds()

    def alive_at(self, now: datetime, fallback: float = DEFAULT_LEASE_TTL) -> bool:
        """Not stopped, and its heartbeat renewed within its own lease (a node's lease
        is its own setting: a peer's or a reader's says nothing about it)."""
        return self.stopped_at is None and self.silent_for(now) <= self.lease(fallback)

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change, as the audit log keeps it: who did what to which record, the record
    before and after (JSON), and why when the actor said so."""

    actor: str
    action: str
    target: str
    at: datetime
    before: JSON = None
    after: JSON = None
    reason: str | None = None
    #: Set by the store (increasing).
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as stored: never its secret, only the secret's hash."""

    id: str
    user: str
    created_at: datetime
    admin: bool = False
    read_only: bool = False
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def role(self) -> str:
        return "admin" if self.admin else ("read-only" if self.read_only else "user")

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        d = _json_dict(dataclasses.asdict(self))
        d["role"] = self.role
        return d


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A result or error put on a named queue when a run finished."""

    id: int
    queue: str
    run_id: str
    schedule_id: str | None
    kind: Literal["result", "error"]
    payload: JSON
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return _json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One entry of the database's event feed: a change to a schedule or a run, as
    committed by any process. ``id`` increases in commit order. ``owner`` is the
    schedule's owner when the event was written (who may see it). The run's details
    (task, times, node, error) are read from its row with the event, so they are its
    latest values."""

    id: int
    type: str
    at: datetime
    schedule_id: str | None
    run_id: str | None = None
    status: str | None = None
    attempt: int | None = None
    owner: str | None = None
    task: str | None = None
    trigger: str | None = None
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    node: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event's JSON object: ids, status, and the details known for it."""
        out: dict[str, Any] = {"id": self.id, "type": self.type, "at": self.at.isoformat()}
        out["schedule_id"] = self.schedule_id
        if self.run_id is not None:
            out["run_id"] = self.run_id
        out["status"] = self.status
        if self.run_id is not None:
            out["attempt"] = self.attempt
        out["owner"] = self.owner
        if self.task is not None:
            out["task"] = self.task
        if self.run_id is not None:
            out["trigger"] = self.trigger
            for name in ("scheduled_for", "started_at", "finished_at"):
                value = getattr(self, name)
                out[name] = None if value is None else value.isoformat()
            out["node"] = self.node
            out["error"] = self.error
        return out


_R = TypeVar("_R", "Schedule", "Run")
_T = TypeVar("_T")


def _fast_replace(record: _R, changes: dict[str, Any]) -> _R:
    """``dataclasses.replace`` without its per-call introspection (it is on hot paths:
    every fire and every claim), for records whose fields have no ``__post_init__``."""
    cls = type(record)
    unknown = changes.keys() - cls.__dataclass_fields__.keys()
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    new = object.__new__(cls)
    setter = object.__setattr__
    for name in cls.__dataclass_fields__:
        setter(new, name, changes[name] if name in changes else getattr(record, name))
    return new


def _json_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in value.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a node publishes about a task, so a client that cannot import the task
    still refuses data that does not fit it and applies the task's defaults."""

    name: str
    #: Keyword arguments the task accepts (its ``ctx`` parameter excluded).
    arguments: tuple[str, ...] = ()
    #: Those of ``arguments`` without a default value.
    required: tuple[str, ...] = ()
    #: It takes ``**kwargs``: any data key is accepted.
    accepts_any: bool = False
    executor: str = "async"
    timeout: float | None = None
    retries: int | None = None
    concurrency: int | None = None
    #: What each argument whose annotation JSON can meet accepts, its elements
    #: included; an argument missing here is not checked (no annotation, ``Any``, a
    #: class; a spec published by a tickwork without types checks names only, one
    #: published by a tickwork without element types checks the outer kinds only).
    types: dict[str, ArgType] = field(default_factory=dict, hash=False)

    def check_data(self, data: dict[str, Any]) -> None:
        """Raise ``ValidationError`` when ``data`` cannot be passed as keyword arguments
        or a value is not of the type its parameter is annotated with; its ``problems``
        name every key at fault (``data_problems``)."""
        problems = self.data_problems(data)
        if problems:
            first = problems[0]
            raise ValidationError(first.message, field=first.field, problems=problems[1:])

    def data_problems(self, data: dict[str, Any]) -> list[FieldProblem]:
        """What is wrong with ``data`` for this task: keys it takes no argument for
        and required ones missing (field ``data``), then each value not of its
        parameter's type (field ``data.<key>`` and the path to the wrong part)."""
        problems: list[FieldProblem] = []
        if not self.accepts_any:
            for key in data:
                if key not in self.arguments:
                    problems.append(
                        FieldProblem(
                            "data",
                            f"task {self.name!r} takes no argument {key!r} "
                            f"(it takes: {', '.join(self.arguments) or 'none'})",
                        )
                    )
                    break
        missing = [n for n in self.required if n not in data]
        if missing and not problems:
            problems.append(
                FieldProblem(
                    "data", f"task {self.name!r} needs data for {', '.join(map(repr, missing))}"
                )
            )
        for key, value in data.items():
            accepted = self.types.get(key)
            found = accepted.problem(value) if accepted is not None else None
            if found is not None:
                assert accepted is not None
                path, wrong = found
                problems.append(
                    FieldProblem(
                        f"data.{key}{path}",
                        f"data.{key}{path} {wrong} "
                        f"(task {self.name!r} takes {key}: {accepted.annotation()})",
                    )
                )
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arguments": list(self.arguments),
            "required": list(self.required),
            "accepts_any": self.accepts_any,
            "executor": self.executor,
            "timeout": self.timeout,
            "retries": self.retries,
            "concurrency": self.concurrency,
            "types": {name: t.to_dict() for name, t in self.types.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(
            name=d["name"],
            arguments=tuple(d.get("arguments", ())),
            required=tuple(d.get("required", ())),
            accepts_any=bool(d.get("accepts_any", False)),
            executor=d.get("executor", "async"),
            timeout=d.get("timeout"),
            retries=d.get("retries"),
            concurrency=d.get("concurrency"),
            types={
                name: ArgType.from_dict(t)
                for name, t in (d.get("types") or {}).items()
                if isinstance(t, dict)
            },
        )


# ---------------------------------------------------------------------------
# Records that pass decisions from the engine to the store. The engine decides
# (with policy.py); the store applies the decision in one transaction.


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run the engine decided to create for one fire time of a schedule.

    ``status`` is ``pending`` for a run to execute, or ``skipped``/``missed`` for a fire
    that is only recorded (``error`` then says why).
    """

    id: str
    scheduled_for: datetime
    due_at: datetime
    trigger: RunTrigger = "schedule"
    status: RunStatus = "pending"
    error: str | None = None
    data: dict[str, JSON] | None = None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What firing one due schedule changes, applied atomically by ``Store.fire_due``."""

    runs: tuple[PlannedRun, ...]
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    execution_count: int
    status: ScheduleStatus
    #: Running runs to cancel (``replace`` overlap policy).
    cancel_run_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How an attempt ended, reported by the node that ran it.

    ``retry_at`` set means the run goes to ``retrying`` and becomes due again then;
    ``None`` means ``status`` is the run's final status. ``finished_at`` is when the
    attempt ended; ``None``: when it is recorded (ends are written in batches, so the
    write may come later than the end).
    """

    status: AttemptEndStatus
    result: JSON = None
    error: str | None = None
    traceback: str | None = None
    logs: tuple[LogRecord, ...] = ()
    retry_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Per-task figures over a period, for ``tickwork stats``."""

    task: str
    #: Runs counted: every status but ``skipped`` and ``missed`` (never executed).
    runs: int
    #: Each of these counts runs in exactly that status, the words ``history --status``
    #: filters on: ``failed`` is not ``timed_out`` nor ``lost``.
    succeeded: int
    failed: int
    p50_duration: float | None
    p95_duration: float | None
    timed_out: int = 0
    lost: int = 0
    cancelled: int = 0

    @property
    def success_rate(self) -> float | None:
        """Succeeded among the runs that ended after executing (succeeded, failed,
        timed_out, lost); cancelled and unfinished runs do not count."""
        ended = self.succeeded + self.failed + self.timed_out + self.lost
        return None if ended == 0 else self.succeeded / ended

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["success_rate"] = self.success_rate
        return d


def record_maker(cls: type[_T], names: Sequence[str]) -> Callable[[Sequence[Any]], _T]:
    """A fast constructor for a frozen, slotted record: values in ``names`` order, the
    other fields at their defaults. It builds every record the fire loop and claims
    return, so it is generated as straight-line code: one slot store per field, several
    times faster than the dataclass ``__init__`` (which goes through
    ``object.__setattr__`` per field) or a loop over the fields. The records have no
    ``__post_init__`` to skip."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    if hasattr(cls, "__post_init__") or set(names) - set(fields):
        raise TypeError(f"cannot build {cls.__name__} records fast")
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    unpack = ", ".join(f"v{i}" for i in range(len(names)))
    lines = ["def make(values):", f"    ({unpack},) = values", "    record = new(cls)"]
    for i, name in enumerate(names):
        env[f"set_{name}"] = cls.__dict__[name].__set__
        lines.append(f"    set_{name}(record, v{i})")
    for name, f in fields.items():
        if name in names:
            continue
        env[f"set_{name}"] = cls.__dict__[name].__set__
        if f.default_factory is not MISSING:
            env[f"factory_{name}"] = f.default_factory
            lines.append(f"    set_{name}(record, factory_{name}())")
        elif f.default is not MISSING:
            env[f"default_{name}"] = f.default
            lines.append(f"    set_{name}(record, default_{name})")
        else:
            raise TypeError(f"{cls.__name__}.{name} has no default")
    lines.append("    return record")
    exec("\n".join(lines), env)  # the code is built above from field names only
    make: Callable[[Sequence[Any]], _T] = env["make"]
    return make
