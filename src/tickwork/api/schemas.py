"""The REST API's request and response bodies (pydantic, at the boundary only).

Requests are checked for shape here (unknown fields refused, types); what a value
means (a valid expression, a known task, data that fits it) is checked once, by
``tickwork.validation`` and the ``Scheduler``, for every door alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# The limits of the Python API, so a schedule it made is one the API takes back (PUT).
from tickwork.limits import (
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    MAX_DESCRIPTION,
    MAX_EXECUTIONS,
    MAX_INSTANCES,
    MAX_PRIORITY,
    MAX_SECONDS,
    MAX_SHORT_TEXT,
    MAX_TAGS,
)
from tickwork.models import (
    ApiToken,
    AttemptStatus,
    AuditEntry,
    CatchupPolicy,
    Node,
    OverlapPolicy,
    QueueMessage,
    Run,
    RunStatus,
    RunTrigger,
    Schedule,
    ScheduleStatus,
    TaskSpec,
)

# The API's names for the models' value sets (one definition, in ``tickwork.models``).
Overlap = OverlapPolicy
Catchup = CatchupPolicy
ScheduleStatusName = ScheduleStatus
RunStatusName = RunStatus
Trigger = RunTrigger

T = TypeVar("T")

#: Request bodies: unknown fields refused, and no silent coercion (``true`` is not 1).
_FORBID = ConfigDict(extra="forbid", strict=True)
#: JSON numbers tickwork accepts for seconds and counts (a bound keeps arithmetic on
#: datetimes finite; the validation layer checks the meaning).
_SECONDS = Field(default=None, ge=0, le=MAX_SECONDS)


class Retry(BaseModel):
    """A retry policy; fields left out keep their defaults."""

    model_config = _FORBID
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    delay: float | None = _SECONDS
    backoff: float | None = Field(default=None, ge=1, le=MAX_BACKOFF)
    max_delay: float | None = _SECONDS
    jitter: bool | None = None


class ScheduleFields(BaseModel):
    """The settable fields of a schedule; every one optional (PATCH)."""

    model_config = _FORBID
    task: str | None = Field(default=None, min_length=1, max_length=MAX_SHORT_TEXT)
    schedule: str | None = Field(default=None, min_length=1, max_length=MAX_SHORT_TEXT)
    name: str | None = Field(default=None, max_length=MAX_SHORT_TEXT)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    timezone: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] | None = None
    start_at: datetime | str | None = None
    end_at: datetime | str | None = None
    jitter: float | None = _SECONDS
    paused: bool | None = None
    overlap: Overlap | None = None
    catchup: Catchup | None = None
    catchup_spread: float | None = _SECONDS
    misfire_grace: float | None = _SECONDS
    max_instances: int | None = Field(default=None, ge=1, le=MAX_INSTANCES)
    max_executions: int | None = Field(default=None, ge=1, le=MAX_EXECUTIONS)
    retry: Retry | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    priority: int | None = Field(default=None, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    result_queue: str | None = Field(default=None, max_length=MAX_SHORT_TEXT)
    error_queue: str | None = Field(default=None, max_length=MAX_SHORT_TEXT)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    metadata: dict[str, Any] | None = None
    owner: str | None = Field(default=None, max_length=MAX_SHORT_TEXT)

    def changes(self) -> dict[str, Any]:
        """The fields the request gave (``null`` included), as the Scheduler takes them."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "retry" and value is not None:
                value = value.model_dump(exclude_none=True)
            out[name] = value
        return out


class ScheduleCreate(ScheduleFields):
    """A new schedule: ``task`` and ``schedule`` are required, ``id`` optional."""

    id: str | None = Field(default=None, max_length=200)
    task: str = Field(min_length=1, max_length=MAX_SHORT_TEXT)
    schedule: str = Field(min_length=1, max_length=MAX_SHORT_TEXT)


class ScheduleReplace(ScheduleFields):
    """``PUT /schedules/{id}``: the whole schedule (the id is the path's)."""

    task: str = Field(min_length=1, max_length=MAX_SHORT_TEXT)
    schedule: str = Field(min_length=1, max_length=MAX_SHORT_TEXT)


class RetryOut(BaseModel):
    max_attempts: int
    delay: float
    backoff: float
    max_delay: float
    jitter: bool


class ScheduleOut(BaseModel):
    id: str
    name: str
    description: str
    task: str
    schedule: str
    timezone: str
    data: dict[str, Any]
    start_at: datetime | None
    end_at: datetime | None
    jitter: float
    paused: bool
    overlap: Overlap
    catchup: Catchup
    catchup_spread: float
    misfire_grace: float
    max_instances: int
    max_executions: int | None
    retry: RetryOut
    timeout: float
    priority: int
    result_queue: str | None
    error_queue: str | None
    tags: list[str]
    metadata: dict[str, Any]
    owner: str | None
    status: ScheduleStatusName
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    execution_count: int
    created_at: datetime | None
    updated_at: datetime | None
    version: int = Field(description="Revision of the settings; the ETag.")
    anchor: datetime | None = Field(
        default=None,
        description="The instant interval steps count from: start_at, or the creation "
        "time; for a start_at written as a wall time in a DST gap, that wall time read "
        "with the offset after the gap (the steps keep it).",
    )
    paused_at: datetime | None = Field(
        default=None, description="When it was last paused (fires since are not caught up)."
    )
    node_defaults: list[str] = Field(
        default_factory=list,
        description="Settings the schedule leaves to the executing node's defaults "
        "(timeout, retry); the values shown are this server's.",
    )

    @classmethod
    def of(cls, s: Schedule) -> ScheduleOut:
        return cls.model_validate(s.to_dict())


class AttemptOut(BaseModel):
    number: int
    status: AttemptStatus
    started_at: datetime
    finished_at: datetime | None
    duration: float | None
    node: str | None
    error: str | None
    traceback: str | None


class LogOut(BaseModel):
    at: datetime
    level: str
    logger: str
    message: str
    attempt: int


class RunOut(BaseModel):
    id: str
    schedule_id: str | None
    schedule_version: int | None
    task: str
    scheduled_for: datetime
    trigger: Trigger
    data: dict[str, Any]
    status: RunStatusName
    attempt: int
    attempts: list[AttemptOut]
    due_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    result: Any = None
    error: str | None
    traceback: str | None
    node: str | None
    trace_id: str | None
    priority: int
    cancel_requested: bool
    created_at: datetime | None
    logs: list[LogOut]

    lease_until: datetime | None = Field(
        default=None, description="While running: until when its node holds it."
    )
    timeout: float | None = Field(default=None, description="Seconds an attempt may take.")
    retry: RetryOut | None = Field(default=None, description="How failed attempts are retried.")
    node_defaults: list[str] = Field(
        default_factory=list,
        description="Settings taken from the executing node's defaults (timeout, retry).",
    )
    parent_span_id: str | None = Field(
        default=None,
        description="The span id of the caller's traceparent that triggered the run: its "
        "attempts' spans are children of that span.",
    )
    trace_flags: int | None = Field(
        default=None,
        description="The trace flags of the caller's traceparent (1: sampled): a "
        "parent-based sampler records the run's attempts only if the caller sampled.",
    )

    @classmethod
    def of(cls, r: Run) -> RunOut:
        d = r.to_dict()
        d["logs"] = [log.to_dict() for log in r.logs]
        return cls.model_validate(d)


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` (null on the last page) fetches the next."""

    items: list[T]
    next_cursor: str | None


class PauseBody(BaseModel):
    model_config = _FORBID
    reason: str | None = Field(default=None, max_length=2000)


class RunBody(BaseModel):
    model_config = _FORBID
    data: dict[str, Any] | None = None


class BackfillBody(BaseModel):
    model_config = _FORBID
    start: datetime | str
    end: datetime | str


class BackfillOut(BaseModel):
    created: int
    runs: list[RunOut]


class PausedOut(BaseModel):
    """What ``POST /pause`` and ``POST /resume`` changed."""

    changed: int
    ids: list[str]


class ValidateBody(BaseModel):
    model_config = _FORBID
    schedule: str = Field(max_length=MAX_SHORT_TEXT)
    timezone: str = Field(default="UTC", max_length=100)
    count: int = Field(default=5, ge=1, le=100)


class ValidateOut(BaseModel):
    valid: bool
    kind: Literal["cron", "interval", "once", "manual"]
    description: str
    next: list[datetime]


class NextOut(BaseModel):
    schedule_id: str
    next: list[datetime]


def _unset(value: Any) -> bool:
    return value is None


class PartTypeOut(BaseModel):
    """What a value (or one part of it) accepts: one of ``types`` (JSON types; ``number``
    includes integers; ``any`` is anything) or one of ``values``. An array's elements
    are each ``items``, or one per position ``prefix_items``; an object's values are
    each ``additional_properties``, or its keys are ``properties``, of which
    ``required`` must be there and no other may (a ``TypedDict`` named ``title``).
    Those keys are left out when the parts are not checked; ``tuple`` is there, true,
    for a ``tuple[int, ...]``."""

    types: list[str]
    values: list[Any]
    items: PartTypeOut | None = Field(default=None, exclude_if=_unset)
    prefix_items: list[PartTypeOut] | None = Field(default=None, exclude_if=_unset)
    properties: dict[str, PartTypeOut] | None = Field(default=None, exclude_if=_unset)
    required: list[str] | None = Field(default=None, exclude_if=_unset)
    additional_properties: PartTypeOut | None = Field(default=None, exclude_if=_unset)
    title: str | None = Field(default=None, exclude_if=_unset)
    variadic_tuple: bool | None = Field(
        default=None,
        alias="tuple",
        exclude_if=_unset,
        description="true: an array annotated as a tuple of any length (tuple[int, ...]), "
        "checked as a list is",
    )


class ArgTypeOut(PartTypeOut):
    """What one argument accepts, and its Python spelling (``annotation``:
    ``list[int]``, ``dict[str, float] | None``)."""

    annotation: str


class TaskOut(BaseModel):
    name: str
    arguments: list[str]
    required: list[str]
    accepts_any: bool
    executor: str
    timeout: float | None
    retries: int | None
    concurrency: int | None
    #: Arguments whose values are checked, by name; the others take any value.
    types: dict[str, ArgTypeOut] = Field(default_factory=dict)
    #: The default of each optional argument that can be shown (as JSON); an optional
    #: argument missing here has a default the node does not publish.
    defaults: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, spec: TaskSpec) -> TaskOut:
        d = spec.to_dict()
        d["types"] = {
            name: d["types"][name] | {"annotation": t.annotation()}
            for name, t in spec.types.items()
        }
        return cls.model_validate(d)


class QueueMessageOut(BaseModel):
    id: int
    queue: str
    run_id: str
    schedule_id: str | None
    kind: Literal["result", "error"]
    payload: Any = None
    created_at: datetime

    @classmethod
    def of(cls, m: QueueMessage) -> QueueMessageOut:
        return cls.model_validate(m.to_dict())


class QueueOut(BaseModel):
    queue: str
    messages: list[QueueMessageOut]


class NodeOut(BaseModel):
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    tasks: list[str]
    is_leader: bool
    running: int
    stopped_at: datetime | None
    #: Threads still running a sync task whose attempt ended (each was replaced).
    stuck_threads: int = 0
    #: Async tasks given up after they ignored their cancellation, still running.
    stuck_coroutines: int = 0
    #: The lease (seconds) the node renews; null for a node of an older tickwork.
    lease_ttl: float | None = None

    @classmethod
    def of(cls, n: Node) -> NodeOut:
        return cls.model_validate(n.to_dict())


class TaskStatsOut(BaseModel):
    task: str
    runs: int
    succeeded: int
    failed: int
    timed_out: int = 0
    lost: int = 0
    cancelled: int = 0
    success_rate: float | None
    p50_duration: float | None
    p95_duration: float | None


class StatsOut(BaseModel):
    tasks: list[TaskStatsOut]
    runs: dict[str, int]
    schedules: dict[str, int]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any = None
    after: Any = None
    reason: str | None

    @classmethod
    def of(cls, e: AuditEntry) -> AuditOut:
        return cls.model_validate(e.to_dict())


class TokenCreate(BaseModel):
    model_config = _FORBID
    user: str = Field(min_length=1, max_length=200)
    admin: bool = False
    read_only: bool = False
    expires: str | None = Field(
        default=None, max_length=50, description="A duration: 30d, 12h, 1w, PT1H..."
    )


class TokenOut(BaseModel):
    id: str
    user: str
    role: Literal["admin", "user", "read-only"]
    admin: bool
    read_only: bool
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, t: ApiToken) -> TokenOut:
        return cls.model_validate(t.to_dict())


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown this once, never stored.")


class FieldProblemOut(BaseModel):
    """One field at fault and why."""

    field: str | None = Field(
        description="The field: a body field (retry.delay, data.limits.cpu[1]), a "
        "query or path parameter, or body for the body as a whole."
    )
    message: str


class ErrorDetails(BaseModel):
    """What an error is about; which keys are there depends on the error."""

    model_config = ConfigDict(extra="allow")
    field: str | None = Field(
        default=None, description="422: the (first) field at fault; the message is about it."
    )
    problems: list[FieldProblemOut] | None = Field(
        default=None,
        description="422: every field found wrong in the request, the first one included, "
        "so that all can be fixed at once.",
    )
    known: list[str] | None = Field(default=None, description="unknown_task: the known tasks.")
    kind: str | None = Field(default=None, description="404: what was looked for.")
    id: str | None = Field(default=None, description="404: the id not found.")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: ErrorDetails


class ErrorOut(BaseModel):
    """Every error answers this shape."""

    error: ErrorDetail
