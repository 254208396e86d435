"""Columns and the row codec: which columns each table has (derived from the
models), how values travel (JSON text, instants, retry policies), and the only code
that turns rows into records and records into rows."""

from __future__ import annotations

import dataclasses
import json
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from tickwork.errors import ValidationError
from tickwork.models import (
    Attempt,
    LogRecord,
    Node,
    QueueMessage,
    RetryPolicy,
    Run,
    Schedule,
    record_maker,
)


def stored_fields(model: type[Any], *, leave_out: Iterable[str] = ()) -> tuple[str, ...]:
    """The fields of a record that are columns of its table, in the record's order."""
    skipped = frozenset(leave_out)
    return tuple(f.name for f in dataclasses.fields(model) if f.name not in skipped)


#: A schedule's row: every field of ``Schedule``.
SCHEDULE_COLUMNS: Final = stored_fields(Schedule)

#: The instants of a schedule.
_SCHEDULE_TIMES: Final = frozenset(
    f.name for f in dataclasses.fields(Schedule) if str(f.type).startswith("datetime")
)

#: Columns ``list_schedules(q=...)`` searches.
_SEARCHED: Final = ("id", "name", "description", "task")

#: Kept as stored by ``update_schedule``: the fire loop maintains them, so a caller's
#: stale copy must not undo a fire that committed meanwhile.
_SCHEDULE_KEPT_ON_UPDATE: Final = frozenset(
    {"id", "created_at", "last_fire_at", "execution_count", "version"}
)

#: A run's row: the fields of ``Run`` but its attempts and logs (tables of their own).
RUN_COLUMNS: Final = stored_fields(Run, leave_out=("attempts", "logs"))


class ScheduleAt:
    """Positions in a schedule's row (``SCHEDULE_COLUMNS``, then ``revision`` where read)."""

    data: Final = SCHEDULE_COLUMNS.index("data")
    retry: Final = SCHEDULE_COLUMNS.index("retry")
    revision: Final = len(SCHEDULE_COLUMNS)


class RunAt:
    """Positions in a run's row (``RUN_COLUMNS``), for code that reads or edits a row
    without decoding it."""

    id: Final = RUN_COLUMNS.index("id")
    schedule_id: Final = RUN_COLUMNS.index("schedule_id")
    status: Final = RUN_COLUMNS.index("status")
    attempt: Final = RUN_COLUMNS.index("attempt")
    due_at: Final = RUN_COLUMNS.index("due_at")
    started_at: Final = RUN_COLUMNS.index("started_at")
    finished_at: Final = RUN_COLUMNS.index("finished_at")
    result: Final = RUN_COLUMNS.index("result")
    error: Final = RUN_COLUMNS.index("error")
    traceback: Final = RUN_COLUMNS.index("traceback")
    node: Final = RUN_COLUMNS.index("node")
    lease_until: Final = RUN_COLUMNS.index("lease_until")


#: What an attempt's end writes to its run: from ``status`` to ``traceback``.
_FINISHED_RUN_COLUMNS: Final = RUN_COLUMNS[RunAt.status : RunAt.traceback + 1]

#: What every run a fire claims has in common: running its first attempt on the node,
#: leased, started and created at the fire's time, nothing else set yet.
_SHARED_BY_CLAIMED: Final = frozenset(
    {"status", "attempt", "started_at", "finished_at", "result", "error", "traceback", "node"}
    | {"trace_id", "parent_span_id", "trace_flags", "lease_until", "cancel_requested"}
    | {"created_at"}
)

#: The columns of a run claimed by its fire that differ from run to run (see
#: ``SqlCore._insert_claimed_rows``).
CLAIMED_RUN_COLUMNS: Final = tuple(c for c in RUN_COLUMNS if c not in _SHARED_BY_CLAIMED)

#: An attempt's row: its run, then every field of ``Attempt``.
ATTEMPT_COLUMNS: Final = ("run_id", *stored_fields(Attempt))

#: A node's row: the fields of ``Node`` that are not computed when nodes are listed.
#: The stuck counts are left out too: only a heartbeat writes them (``node_beats``).
NODE_COLUMNS: Final = stored_fields(
    Node, leave_out=("is_leader", "running", "stuck_threads", "stuck_coroutines")
)

#: A queue message's row: every field of ``QueueMessage``.
QUEUE_COLUMNS: Final = stored_fields(QueueMessage)

_S = ", ".join(SCHEDULE_COLUMNS)

_R = ", ".join(RUN_COLUMNS)

_RR = ", ".join(f"r.{c}" for c in RUN_COLUMNS)

_A = ", ".join(ATTEMPT_COLUMNS)

_Q = ", ".join(QUEUE_COLUMNS)

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
    """JSON text of a value; ``ValidationError`` when it is not JSON.

    A float of 1e16 or more is written with an exponent (``1e+20``), which PostgreSQL's
    ``jsonb`` keeps as a decimal and gives back as ``100000000000000000000``: an int, where
    SQLite, which keeps the text, gives back the float. Such floats are written out in
    full instead (``100000000000000000000.0``), which both give back as the same float.
    """
    if not value and isinstance(value, dict):
        return "{}"
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON: {exc}", field=what) from None
    if "e+" in text:  # such a float, or a string with "e+" in it (rare either way)
        return _in_full(value)
    return text


def _in_full(value: Any) -> str:
    """``_ENCODER``'s text of a value known to be JSON, but with every float written
    without an exponent when it has a positive one."""
    if isinstance(value, float):
        text = _ENCODER.encode(value)
        return f"{value:.1f}" if "e+" in text else text
    if isinstance(value, dict):
        items = (f"{_ENCODER.encode(_key(k))}:{_in_full(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_in_full(v) for v in value) + "]"
    return _ENCODER.encode(value)


def _key(key: Any) -> str:
    """A dict key as the JSON encoder writes it (keys are strings in JSON)."""
    if isinstance(key, str):
        return key
    return str(_ENCODER.encode(key))


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


@lru_cache(maxsize=256)
def node_defaults(text: str | None) -> tuple[str, ...]:
    return tuple(f for f in text.split(",") if f) if text else ()


@lru_cache(maxsize=1024)
def retry_policy(text: str) -> RetryPolicy:
    """Cached: the runs of a burst share a handful of policies (frozen, so shareable),
    and decoding one was a fifth of the cost of reading a run."""
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


@lru_cache(maxsize=8192)
def from_micros_or_none(value: int | None) -> datetime | None:
    """``from_micros``, None for None: the SQLite store's ``_dt``. A cache hit is a call
    of C code only, no Python frame: decoding a run calls it six times."""
    return None if value is None else _EPOCH + timedelta(microseconds=value)


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
#: A schedule row may carry more columns after these (its ``revision``).
_SCHEDULE_WIDTH: Final = len(SCHEDULE_COLUMNS)

_make_run = record_maker(Run, (*RUN_COLUMNS, "attempts"))

#: Every column of a schedule, in ``_schedule``'s order.


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
        (
            id_,
            task,
            schedule,
            name,
            description,
            timezone,
            data,
            start_at,
            end_at,
            jitter,
            paused,
            overlap,
            catchup,
            catchup_spread,
            misfire_grace,
            max_instances,
            max_executions,
            retry,
            timeout,
            priority,
            result_queue,
            error_queue,
            tags,
            metadata,
            owner,
            status,
            next_fire_at,
            last_fire_at,
            execution_count,
            created_at,
            updated_at,
            anchor,
            paused_at,
            version,
            defaults,
        ) = row[:_SCHEDULE_WIDTH]
        dt = self._dt
        return _make_schedule(
            (
                id_,
                task,
                schedule,
                name,
                description,
                timezone,
                loads(data),
                dt(start_at),
                dt(end_at),
                float(jitter),
                bool(paused),
                overlap,
                catchup,
                float(catchup_spread),
                float(misfire_grace),
                max_instances,
                max_executions,
                retry_policy(retry),
                float(timeout),
                priority,
                result_queue,
                error_queue,
                _tags(tags),
                loads(metadata),
                owner,
                status,
                dt(next_fire_at),
                dt(last_fire_at),
                execution_count,
                dt(created_at),
                dt(updated_at),
                dt(anchor),
                dt(paused_at),
                version,
                node_defaults(defaults),
            )
        )

    def _schedule_row(self, s: Schedule) -> tuple[Any, ...]:
        """The row of a schedule, in ``SCHEDULE_COLUMNS`` order."""
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
        (
            id_,
            schedule_id,
            task,
            scheduled_for,
            trigger,
            data,
            status,
            attempt,
            due_at,
            started_at,
            finished_at,
            result,
            error,
            traceback,
            node,
            trace_id,
            parent_span_id,
            trace_flags,
            priority,
            lease_until,
            cancel_requested,
            created_at,
            timeout,
            retry,
            schedule_version,
            defaults,
        ) = row
        dt = self._dt
        return _make_run(
            (
                id_,
                schedule_id,
                task,
                dt(scheduled_for),
                trigger,
                loads(data),
                status,
                attempt,
                dt(due_at),
                dt(started_at),
                dt(finished_at),
                loads(result),
                error,
                traceback,
                node,
                trace_id,
                parent_span_id,
                trace_flags,
                priority,
                dt(lease_until),
                bool(cancel_requested),
                dt(created_at),
                float(timeout),
                retry_policy(retry),
                schedule_version,
                node_defaults(defaults),
                attempts,
            )
        )

    def _run_row(self, r: Run) -> tuple[Any, ...]:
        """The row of a run, in ``RUN_COLUMNS`` order."""
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
            r.parent_span_id,
            r.trace_flags,
            r.priority,
            ts(r.lease_until),
            r.cancel_requested,
            ts(r.created_at),
            float(r.timeout),
            retry_json(r.retry),
            r.schedule_version,
            node_defaults_text(r.node_defaults),
        )

    def _attempt(self, row: Sequence[Any]) -> Attempt:
        _, number, status, started_at, finished_at, node, error, traceback = row
        started = self._dt(started_at)
        assert started is not None
        return Attempt(
            number=number,
            status=status,
            started_at=started,
            finished_at=self._dt(finished_at),
            node=node,
            error=error,
            traceback=traceback,
        )

    def _node(self, row: Sequence[Any], leader: str | None, running: int) -> Node:
        """A node from its row (``NODE_COLUMNS``, then ``stuck_threads`` and
        ``stuck_coroutines`` when read)."""
        id_, host, pid, started_at, heartbeat_at, tasks, stopped_at, lease_ttl, *more = row
        started, beat = self._dt(started_at), self._dt(heartbeat_at)
        assert started is not None and beat is not None
        return Node(
            id=id_,
            host=host,
            pid=pid,
            started_at=started,
            heartbeat_at=beat,
            tasks=tuple(loads(tasks)),
            stopped_at=self._dt(stopped_at),
            is_leader=id_ == leader,
            running=running,
            stuck_threads=int(more[0]) if more else 0,
            stuck_coroutines=int(more[1]) if len(more) > 1 else 0,
            lease_ttl=None if lease_ttl is None else float(lease_ttl),
        )
