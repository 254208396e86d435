"""Columns and the row codec: which columns each table has (derived from the
models), how values travel (JSON text, instants, retry policies), and the only code
that turns rows into records and records into rows."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from tickwork.errors import (
    ValidationError,
)
from tickwork.models import (
    Attempt,
    LogRecord,
    Node,
    RetryPolicy,
    Run,
    Schedule,
    record_maker,
)

SCHEDULE_COLUMNS: Final = (
    "id",
    "task",
    "schedule",
    "name",
    "description",
    "timezone",
    "data",
    "start_at",
    "end_at",
    "jitter",
    "paused",
    "overlap",
    "catchup",
    "catchup_spread",
    "misfire_grace",
    "max_instances",
    "max_executions",
    "retry",
    "timeout",
    "priority",
    "result_queue",
    "error_queue",
    "tags",
    "metadata",
    "owner",
    "status",
    "next_fire_at",
    "last_fire_at",
    "execution_count",
    "created_at",
    "updated_at",
    "anchor",
    "paused_at",
    "version",
    "node_defaults",
)

_SCHEDULE_TIMES: Final = frozenset(
    {
        "start_at",
        "end_at",
        "next_fire_at",
        "last_fire_at",
        "created_at",
        "updated_at",
        "anchor",
        "paused_at",
    }
)

#: Runs (aliased ``r``) of one owner's schedules; one parameter, the owner.
_OWNED: Final = "r.schedule_id IN (SELECT id FROM schedules WHERE owner = ?)"

#: Columns ``list_schedules(q=...)`` searches.
_SEARCHED: Final = ("id", "name", "description", "task")

_SCHEDULE_JSON: Final = frozenset({"data", "metadata"})

#: Kept as stored by ``update_schedule``: the fire loop maintains them, so a caller's
#: stale copy must not undo a fire that committed meanwhile.
_SCHEDULE_KEPT_ON_UPDATE: Final = frozenset(
    {"id", "created_at", "last_fire_at", "execution_count", "version"}
)

RUN_COLUMNS: Final = (
    "id",
    "schedule_id",
    "task",
    "scheduled_for",
    "trigger",
    "data",
    "status",
    "attempt",
    "due_at",
    "started_at",
    "finished_at",
    "result",
    "error",
    "traceback",
    "node",
    "trace_id",
    "priority",
    "lease_until",
    "cancel_requested",
    "created_at",
    "timeout",
    "retry",
    "node_defaults",
    "schedule_version",
)

#: What every run a fire claims has in common: running its first attempt on the node,
#: leased, started and created at the fire's time, nothing else set yet.
_SHARED_BY_CLAIMED: Final = frozenset(
    {"status", "attempt", "started_at", "finished_at", "result", "error", "traceback", "node"}
    | {"trace_id", "lease_until", "cancel_requested", "created_at"}
)

#: The columns of a run claimed by its fire that differ from run to run (see
#: ``SqlStore._insert_claimed_rows``).
CLAIMED_RUN_COLUMNS: Final = tuple(c for c in RUN_COLUMNS if c not in _SHARED_BY_CLAIMED)

ATTEMPT_COLUMNS: Final = (
    "run_id",
    "number",
    "status",
    "started_at",
    "finished_at",
    "node",
    "error",
    "traceback",
)

NODE_COLUMNS: Final = ("id", "host", "pid", "started_at", "heartbeat_at", "tasks", "stopped_at")

QUEUE_COLUMNS: Final = ("id", "queue", "run_id", "schedule_id", "kind", "payload", "created_at")

_S = ", ".join(SCHEDULE_COLUMNS)

_R = ", ".join(RUN_COLUMNS)

_RR = ", ".join(f"r.{c}" for c in RUN_COLUMNS)

_A = ", ".join(ATTEMPT_COLUMNS)

_Q = ", ".join(QUEUE_COLUMNS)

#: What an attempt's end writes to its run (``RUN_COLUMNS[6:14]``).
_FINISHED_RUN_COLUMNS: Final = RUN_COLUMNS[6:14]

_WAITING = "('pending', 'retrying')"

_WAITING_STATUSES: Final = frozenset({"pending", "retrying"})

_ACTIVE = "('pending', 'running', 'retrying')"

_FAILED_STATUSES: Final = ("failed", "timed_out", "lost")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_MICRO: Final = timedelta(microseconds=1)

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

_decode: Final = json.JSONDecoder().decode

#: JSON text back to values (no ``None`` shortcut: for texts known to be JSON).
parse_json: Final = _decode


def dumps(value: Any, what: str = "value") -> str:
    """JSON text of a value; ``ValidationError`` when it is not JSON."""
    if not value and isinstance(value, dict):
        return "{}"
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON: {exc}", field=what) from None


def like_escaped(text: str) -> str:
    """``text`` matched literally in ``LIKE ? ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def loads(text: Any) -> Any:
    if text is None:
        return None
    if text == "{}":
        return {}
    return _decode(text)


@lru_cache(maxsize=256)
def retry_json(policy: RetryPolicy) -> str:
    return dumps(policy.to_dict(), "retry")


@lru_cache(maxsize=256)
def node_defaults_text(fields: tuple[str, ...]) -> str:
    """``("retry", "timeout")`` as stored: ``retry,timeout`` ('' for none)."""
    return ",".join(fields)


def node_defaults(text: str | None) -> tuple[str, ...]:
    return tuple(f for f in text.split(",") if f) if text else ()


def retry_policy(text: str) -> RetryPolicy:
    value = _decode(text)
    if not isinstance(value, dict):
        return RetryPolicy()
    return RetryPolicy(**{k: v for k, v in value.items() if k in RetryPolicy.__dataclass_fields__})


@lru_cache(maxsize=1024)
def _tags(text: str) -> tuple[str, ...]:
    return tuple(_decode(text))


def micros(dt: datetime) -> int:
    """Microseconds since the epoch of an aware instant (exact integer arithmetic)."""
    if dt.tzinfo is not UTC and (dt.tzinfo is None or dt.utcoffset() is None):
        raise ValidationError(f"naive datetime {dt.isoformat()}: tickwork needs aware instants")
    return (dt - _EPOCH) // _MICRO


@lru_cache(maxsize=8192)
def from_micros(value: int) -> datetime:
    # Cached: a burst of runs shares a handful of instants; datetimes are immutable.
    return _EPOCH + timedelta(microseconds=value)


def utc(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is UTC:  # instants read from the store are UTC already
        return dt
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValidationError(f"naive datetime {dt.isoformat()}: tickwork needs aware instants")
    return dt.astimezone(UTC)


def _aware(dt: datetime) -> datetime:
    out = utc(dt)
    assert out is not None
    return out


def utc_schedule(s: Schedule) -> Schedule:
    changes = {}
    for name in _SCHEDULE_TIMES:
        value = getattr(s, name)
        if value is not None and value.tzinfo is not UTC:
            changes[name] = utc(value)
    return s.replace(**changes) if changes else s


def _utc_run(r: Run) -> Run:
    return r.replace(
        scheduled_for=utc(r.scheduled_for),
        due_at=utc(r.due_at if r.due_at is not None else r.scheduled_for),
        started_at=utc(r.started_at),
        finished_at=utc(r.finished_at),
        lease_until=utc(r.lease_until),
        created_at=utc(r.created_at),
    )


def _utc_logs(logs: Sequence[LogRecord]) -> tuple[LogRecord, ...]:
    return tuple(
        LogRecord(_aware(log.at), log.level, log.logger, log.message, log.attempt) for log in logs
    )


_make_schedule = record_maker(Schedule, SCHEDULE_COLUMNS)

_make_run = record_maker(Run, (*RUN_COLUMNS, "attempts"))

#: Every column of a schedule, in ``_schedule``'s order.
SCHEDULE_SELECT: Final = f"SELECT {_S} FROM schedules"


class RowCodec:
    """The only place rows become records and records rows: one method per table, its
    columns in the order of the column lists above."""

    @abstractmethod
    def _ts(self, dt: datetime | None) -> Any:
        """An instant as a parameter."""

    @abstractmethod
    def _dt(self, value: Any) -> datetime | None:
        """An instant from a row: aware, UTC."""

    def _schedule(self, row: Sequence[Any]) -> Schedule:
        dt = self._dt
        return _make_schedule(
            (
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                loads(row[6]),
                dt(row[7]),
                dt(row[8]),
                float(row[9]),
                bool(row[10]),
                row[11],
                row[12],
                float(row[13]),
                float(row[14]),
                row[15],
                row[16],
                retry_policy(row[17]),
                float(row[18]),
                row[19],
                row[20],
                row[21],
                _tags(row[22]),
                loads(row[23]),
                row[24],
                row[25],
                dt(row[26]),
                dt(row[27]),
                row[28],
                dt(row[29]),
                dt(row[30]),
                dt(row[31]),
                dt(row[32]),
                row[33],
                node_defaults(row[34]),
            )
        )

    def _schedule_row(self, s: Schedule) -> tuple[Any, ...]:
        ts = self._ts
        return (
            s.id,
            s.task,
            s.schedule,
            s.name,
            s.description,
            s.timezone,
            dumps(s.data, "data"),
            ts(s.start_at),
            ts(s.end_at),
            float(s.jitter),
            bool(s.paused),
            s.overlap,
            s.catchup,
            float(s.catchup_spread),
            float(s.misfire_grace),
            int(s.max_instances),
            s.max_executions,
            retry_json(s.retry),
            float(s.timeout),
            int(s.priority),
            s.result_queue,
            s.error_queue,
            dumps(list(s.tags), "tags") if s.tags else "[]",
            dumps(s.metadata, "metadata"),
            s.owner,
            s.status,
            ts(s.next_fire_at),
            ts(s.last_fire_at),
            int(s.execution_count),
            ts(s.created_at),
            ts(s.updated_at),
            ts(s.anchor),
            ts(s.paused_at),
            int(s.version),
            node_defaults_text(s.node_defaults),
        )

    def _run(self, row: Sequence[Any], attempts: tuple[Attempt, ...] = ()) -> Run:
        dt = self._dt
        return _make_run(
            (
                row[0],
                row[1],
                row[2],
                dt(row[3]),
                row[4],
                loads(row[5]),
                row[6],
                row[7],
                dt(row[8]),
                dt(row[9]),
                dt(row[10]),
                loads(row[11]),
                row[12],
                row[13],
                row[14],
                row[15],
                row[16],
                dt(row[17]),
                bool(row[18]),
                dt(row[19]),
                float(row[20]),
                retry_policy(row[21]),
                node_defaults(row[22]),
                row[23],
                attempts,
            )
        )

    def _run_row(self, r: Run) -> tuple[Any, ...]:
        ts = self._ts
        return (
            r.id,
            r.schedule_id,
            r.task,
            ts(r.scheduled_for),
            r.trigger,
            dumps(r.data, "data"),
            r.status,
            r.attempt,
            ts(r.due_at if r.due_at is not None else r.scheduled_for),
            ts(r.started_at),
            ts(r.finished_at),
            None if r.result is None else dumps(r.result, "result"),
            r.error,
            r.traceback,
            r.node,
            r.trace_id,
            r.priority,
            ts(r.lease_until),
            r.cancel_requested,
            ts(r.created_at),
            float(r.timeout),
            retry_json(r.retry),
            node_defaults_text(r.node_defaults),
            r.schedule_version,
        )

    def _attempt(self, row: Sequence[Any]) -> Attempt:
        started = self._dt(row[3])
        assert started is not None
        return Attempt(
            number=row[1],
            status=row[2],
            started_at=started,
            finished_at=self._dt(row[4]),
            node=row[5],
            error=row[6],
            traceback=row[7],
        )

    def _node(self, row: Sequence[Any], leader: str | None, running: int) -> Node:
        started, beat = self._dt(row[3]), self._dt(row[4])
        assert started is not None and beat is not None
        return Node(
            id=row[0],
            host=row[1],
            pid=row[2],
            started_at=started,
            heartbeat_at=beat,
            tasks=tuple(loads(row[5])),
            stopped_at=self._dt(row[6]),
            is_leader=row[0] == leader,
            running=running,
            stuck_threads=int(row[7]) if len(row) > 7 else 0,
        )
