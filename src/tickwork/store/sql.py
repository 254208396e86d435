"""The SQL core shared by the SQLite and PostgreSQL stores.

Everything both dialects do the same way lives here: the statements, the mapping
between rows and records, and the transactions of ``Store`` written once. A dialect
(``sqlite.py``, ``postgres.py``) supplies connections and transactions, how an instant
and a list travel as parameters, and its locking: SQLite serializes every write
transaction (``BEGIN IMMEDIATE``), so the statements here are exact as they stand;
PostgreSQL runs them concurrently and adds row locks with ``SKIP LOCKED`` where two
nodes could otherwise step on each other (see ``_skip_locked`` and ``_lock_claim``).

Statements use ``?`` placeholders; the PostgreSQL dialect rewrites them to ``%s``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import threading
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from itertools import islice
from typing import Any, Final, Protocol

from tickwork.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from tickwork.limits import (
    MAX_ERROR_CHARS,
    MAX_TRACEBACK_CHARS,
    clean_json,
    clean_text,
    cut_end,
    cut_start,
    needs_cleaning,
)
from tickwork.models import (
    ACTIVE_RUN_STATUSES,
    RUN_STATUSES,
    Attempt,
    AttemptOutcome,
    AuditEntry,
    FirePlan,
    LogRecord,
    Node,
    PlannedRun,
    QueueMessage,
    RetryPolicy,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    TaskSpec,
    TaskStats,
    record_maker,
)
from tickwork.policy import QueueKey, is_queue_head, queue_head, room, running_limit
from tickwork.store.base import (
    ClaimRequest,
    FinishItem,
    FirePlanner,
    FireResult,
    Gauges,
    Heartbeat,
    NextFire,
    RetryPlanner,
    Store,
)
from tickwork.store.sql_access import AccessSql
from tickwork.store.sql_dashboard import DashboardSql
from tickwork.store.sql_run_lines import RunLinesSql
from tickwork.store.sql_stats import (
    indexed_run_stats,
    indexed_status_counts,
    indexed_task_stats,
    task_stats_of,
)
from tickwork.store.sql_user_settings import UserSettingsSql


class Tx(Protocol):
    """One open transaction: run statements, get rows back as tuples."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run a statement once per row; the number of rows changed (-1 if unknown)."""
        ...


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

log = logging.getLogger("tickwork.store")

_S = ", ".join(SCHEDULE_COLUMNS)
#: A new schedule row, with its first revision (see ``new_revision``).
INSERT_SCHEDULE: Final = (
    f"INSERT INTO schedules ({_S}, revision) VALUES ({', '.join('?' for _ in SCHEDULE_COLUMNS)}, ?)"
)
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
_DELETE_CHUNK: Final = 5000

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


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's ``percentile_cont``."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The migrations of a dialect, ``(version, sql)`` in order, from ``migrations/<dialect>``.

    A file is named ``NNNN_what.sql``; its version is ``NNNN``.
    """
    folder = resources.files("tickwork.store").joinpath("migrations", dialect)
    found: list[tuple[int, str]] = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


_make_schedule = record_maker(Schedule, SCHEDULE_COLUMNS)


class _Abandoned(Exception):
    """A fire prepared ahead of its time whose node stopped before that time."""


def new_revision() -> int:
    """A schedule row's first ``revision``: random (62 bits, never 0), so a schedule
    deleted and added again under the same id does not take up a revision that a
    node's cache may still hold for the old row. Every later write adds 1."""
    return random.getrandbits(62) | 1


#: A schedule as the fire loop keeps it: (revision, record, data and retry as stored).
_Known = tuple[int, Schedule, str, str]
_make_run = record_maker(Run, (*RUN_COLUMNS, "attempts"))


#: Every column of a schedule, in ``_schedule``'s order.
SCHEDULE_SELECT: Final = f"SELECT {_S} FROM schedules"


class SqlStore(AccessSql, DashboardSql, RunLinesSql, UserSettingsSql, Store):
    """``Store`` written once in SQL; subclasses provide the dialect."""

    #: Appended to SELECTs that lock rows a concurrent node may skip (PostgreSQL).
    _skip_locked: str = ""
    #: The same, locking only the rows of the table aliased ``r`` in a join.
    _skip_locked_r: str = ""
    #: Appended to SELECTs that lock rows and wait for them (PostgreSQL).
    _for_update: str = ""
    #: A condition with one parameter: the schedule's ``tags`` contain the tag.
    _tag_filter: str
    #: Schedules kept decoded for the fire loop at most (see ``read_ahead``).
    schedule_cache_size: int = 20_000

    def __init__(self) -> None:
        #: Schedules decoded before their fire, by id, with the ``revision`` they were
        #: read at. Only a cache: the fire reads the stored revisions in its own
        #: transaction and decodes the row again when they differ.
        self._known: dict[str, _Known] = {}
        self._known_lock = threading.Lock()
        #: Fired schedules taken from the cache, and read from their rows.
        self.cache_hits = 0
        self.cache_misses = 0

    # -- dialect ---------------------------------------------------------------------

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]:
        """A write transaction: committed when the block ends, rolled back on error."""

    @abstractmethod
    def _read(self, snapshot: bool = False) -> AbstractContextManager[Tx]:
        """Reads; with ``snapshot`` every statement sees the same committed state."""

    @abstractmethod
    def _ts(self, dt: datetime | None) -> Any:
        """An instant as a parameter."""

    @abstractmethod
    def _dt(self, value: Any) -> datetime | None:
        """An instant from a row: aware, UTC."""

    @abstractmethod
    def _seconds(self, value: Any) -> float:
        """A duration (``finished_at - started_at`` as the database computes it) in
        seconds, the same float as the difference of the two instants read back."""

    @abstractmethod
    def _in(self, column: str, values: Collection[Any], kind: str = "text") -> tuple[str, Any]:
        """``column`` is one of ``values``: the condition and its one parameter."""

    def _notify_tx(self, tx: Tx) -> None:
        """Tell other nodes, when this transaction commits, that work changed."""

    def _lock_claim(
        self, tx: Tx, schedule_ids: list[str], tasks: list[str]
    ) -> tuple[set[str], set[str]]:
        """Serialize claimers over the schedules and tasks whose running runs are limited.

        Returns the schedules and tasks this transaction may claim runs of; after it
        returns, the running runs counted in the transaction for those are exact until
        commit. SQLite's write transactions are already serial: everything is returned.
        """
        return set(schedule_ids), set(tasks)

    def _duration_percentiles(
        self, tx: Tx, where: str, params: Sequence[Any]
    ) -> dict[str, tuple[float | None, float | None]]:
        """p50/p95 run duration per task over the runs matching ``where`` (alias ``r``)."""
        by_task: dict[str, list[float]] = defaultdict(list)
        rows = tx.execute(
            f"SELECT r.task, r.started_at, r.finished_at FROM runs r WHERE {where}"
            " AND r.status IN ('succeeded', 'failed', 'timed_out')"
            " AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL",
            params,
        )
        for task, started, finished in rows:
            s, f = self._dt(started), self._dt(finished)
            assert s is not None and f is not None
            by_task[task].append((f - s).total_seconds())
        out: dict[str, tuple[float | None, float | None]] = {}
        for task, values in by_task.items():
            values.sort()
            out[task] = (percentile(values, 0.5), percentile(values, 0.95))
        return out

    def _due_revisions(
        self, tx: Tx, t_now: Any, limit: int, *, lock: bool
    ) -> Sequence[Sequence[Any]]:
        """``(id, revision)`` of the active schedules due at ``t_now``, earliest first;
        with ``lock``, locked for this transaction."""
        return tx.execute(
            "SELECT id, revision FROM schedules WHERE status = 'active' AND next_fire_at <= ?"
            f" ORDER BY next_fire_at, id LIMIT ?{self._skip_locked if lock else ''}",
            (t_now, limit),
        )

    def _schedule_rows(self, tx: Tx, ids: Collection[str]) -> Sequence[Sequence[Any]]:
        """Rows (``SCHEDULE_COLUMNS``, then ``revision``) of these schedules, in any order."""
        cond, param = self._in("id", ids)
        return tx.execute(f"SELECT {_S}, revision FROM schedules WHERE {cond}", (param,))

    def _insert_first_attempts(
        self, tx: Tx, run_ids: Sequence[str], t_started: Any, node: str | None
    ) -> None:
        """Attempt 1, running on ``node``, of runs claimed as they are created."""
        tx.executemany(
            "INSERT INTO attempts (run_id, number, status, started_at, node)"
            " VALUES (?, 1, 'running', ?, ?)",
            [(run_id, t_started, node) for run_id in run_ids],
        )

    def _store_fired(self, tx: Tx, updates: Sequence[Sequence[Any]]) -> None:
        """Store fired schedules' ``(next_fire_at, last_fire_at, execution_count, status, id)``."""
        self._bulk_update(
            tx,
            "schedules",
            ("next_fire_at", "last_fire_at", "execution_count", "status"),
            updates,
            also="revision = revision + 1",
        )

    def _bulk_update(
        self,
        tx: Tx,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        keys: Sequence[str] = ("id",),
        also: str = "",
    ) -> None:
        """``UPDATE table SET columns (, also) WHERE keys`` for each row: the values of
        ``columns``, then those of ``keys``. A row must not repeat another's keys."""
        sets = ", ".join([f"{c} = ?" for c in columns] + ([also] if also else []))
        where = " AND ".join(f"{k} = ?" for k in keys)
        tx.executemany(f"UPDATE {table} SET {sets} WHERE {where}", rows)

    def _insert_run_rows(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        """Insert run rows (``RUN_COLUMNS`` order), dropping conflicts; the ids inserted."""
        if not rows:
            return set()
        placeholders = ", ".join("?" for _ in RUN_COLUMNS)
        changed = tx.executemany(
            f"INSERT INTO runs ({_R}) VALUES ({placeholders}) ON CONFLICT DO NOTHING", rows
        )
        return self._inserted(tx, rows, changed)

    def _inserted(self, tx: Tx, rows: Sequence[Sequence[Any]], changed: int) -> set[str]:
        """The ids (first column) of the ``rows`` just inserted, of which ``changed``
        went in: all of them, or those found in the table."""
        if changed == len(rows):
            return {row[0] for row in rows}
        return self._inserted_ids(tx, [row[0] for row in rows])

    def _insert_claimed_rows(
        self,
        tx: Tx,
        rows: Sequence[Sequence[Any]],
        t_now: Any,
        node: str | None,
        t_lease: Any,
    ) -> set[str]:
        """Insert runs their fire claimed (``CLAIMED_RUN_COLUMNS`` order): each is
        ``running`` its first attempt on ``node``, started and created at ``t_now`` and
        leased until ``t_lease``, so only the columns that differ travel per row.
        Conflicts are dropped; returns the ids inserted."""
        # RUN_COLUMNS from status to trace_id, then from lease_until to created_at.
        started = ("running", 1)
        unfinished = (t_now, None, None, None, None, node, None)
        leased = (t_lease, False, t_now)
        return self._insert_run_rows(
            tx,
            [(*row[:6], *started, row[6], *unfinished, row[7], *leased, *row[8:]) for row in rows],
        )

    def _inserted_ids(self, tx: Tx, ids: Sequence[str]) -> set[str]:
        """Which of these fresh run ids are in the table: every run has a fresh id, so
        it is there iff its insert went through (a conflict on (schedule_id,
        scheduled_for) dropped it)."""
        cond, param = self._in("id", ids)
        return {r[0] for r in tx.execute(f"SELECT id FROM runs WHERE {cond}", (param,))}

    # -- mapping ---------------------------------------------------------------------

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

    def _attempts_of(self, tx: Tx, run_ids: Collection[str]) -> dict[str, tuple[Attempt, ...]]:
        if not run_ids:
            return {}
        cond, param = self._in("run_id", run_ids)
        grouped: dict[str, list[Attempt]] = defaultdict(list)
        for row in tx.execute(
            f"SELECT {_A} FROM attempts WHERE {cond} ORDER BY run_id, number", (param,)
        ):
            grouped[row[0]].append(self._attempt(row))
        return {k: tuple(v) for k, v in grouped.items()}

    def _runs_with_attempts(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> list[Run]:
        attempts = self._attempts_of(tx, [row[0] for row in rows])
        return [self._run(row, attempts.get(row[0], ())) for row in rows]

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

    # -- schedules -------------------------------------------------------------------

    def add_schedule(self, schedule: Schedule, audit: AuditEntry | None = None) -> Schedule:
        row = self._schedule_row(schedule)
        try:
            with self._write() as tx:
                tx.execute(INSERT_SCHEDULE, (*row, new_revision()))
                if audit is not None:
                    self._audit_tx(tx, [audit])
                self._notify_tx(tx)
        except ConflictError:
            raise ConflictError(f"schedule {schedule.id!r} already exists") from None
        return utc_schedule(schedule)

    def update_schedule(
        self,
        schedule: Schedule,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> Schedule:
        row = self._schedule_row(schedule)
        sets = [c for c in SCHEDULE_COLUMNS if c not in _SCHEDULE_KEPT_ON_UPDATE]
        values = [v for c, v in zip(SCHEDULE_COLUMNS, row, strict=True) if c in sets]
        assignments = ", ".join(f"{c} = ?" for c in sets)
        with self._write() as tx:
            self._check_version(tx, schedule.id, expected_version)
            rows = tx.execute(
                f"UPDATE schedules SET {assignments}, revision = revision + 1,"
                f" version = version + 1 WHERE id = ? RETURNING {_S}",
                (*values, schedule.id),
            )
            if not rows:
                raise NotFoundError("schedule", schedule.id)
            stored = self._schedule(rows[0])
            if audit is not None:
                self._audit_tx(tx, [dataclasses.replace(audit, after=stored.to_dict())])
            self._notify_tx(tx)
        return stored

    def _check_version(self, tx: Tx, schedule_id: str, expected: int | None) -> None:
        """Lock the schedule's row and raise ``PreconditionFailedError`` unless its
        ``version`` is ``expected`` (None: no check; a missing row is left to the
        caller's statement)."""
        if expected is None:
            return
        rows = tx.execute(
            f"SELECT version FROM schedules WHERE id = ?{self._for_update}", (schedule_id,)
        )
        if rows and int(rows[0][0]) != expected:
            raise PreconditionFailedError(
                f"schedule {schedule_id!r} is at version {rows[0][0]}, not {expected}:"
                " it changed since it was read"
            )

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        with self._read() as tx:
            rows = tx.execute(f"SELECT {_S} FROM schedules WHERE id = ?", (schedule_id,))
        return self._schedule(rows[0]) if rows else None

    def _schedule_where(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
    ) -> tuple[str, list[Any]]:
        """The WHERE clause ("" for none) and parameters of the schedule filters
        that ``list_schedules`` and the dashboard's pages share."""
        where: list[str] = []
        params: list[Any] = []
        if q:
            pattern = "%" + like_escaped(q.lower()) + "%"
            where.append(
                "(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")"
            )
            params.extend([pattern] * len(_SEARCHED))
        for cond, value in (
            ("status = ?", status),
            ("task = ?", task),
            (self._tag_filter, tag),
            ("owner = ?", owner),
        ):
            if value is not None:
                where.append(cond)
                params.append(value)
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def list_schedules(
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
        where, params = self._schedule_where(status=status, task=task, tag=tag, owner=owner, q=q)
        if after_id is not None:
            where += " AND id > ?" if where else " WHERE id > ?"
            params.append(after_id)
        sql = f"SELECT {_S} FROM schedules{where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        with self._read() as tx:
            rows = tx.execute(sql, params)
        return [self._schedule(r) for r in rows]

    def active_runs(self, now: datetime) -> tuple[dict[str, int], dict[str, list[str]]]:
        # Each read is served by a partial index (runs_waiting, runs_running).
        with self._read(snapshot=True) as tx:
            waiting = tx.execute(
                "SELECT status, COUNT(*), SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END) FROM runs"
                " WHERE status IN ('pending', 'retrying') GROUP BY status",
                (self._ts(_aware(now)),),
            )
            running = tx.execute("SELECT node, id FROM runs WHERE status = 'running'")
        counts = {"pending": 0, "running": len(running), "retrying": 0, "backlog": 0}
        for status, n, due in waiting:
            counts[status] = int(n)
            counts["backlog"] += int(due or 0)
        by_node: dict[str, list[str]] = {}
        for node, run_id in running:
            by_node.setdefault(node or "", []).append(run_id)
        return counts, by_node

    def upcoming_schedules(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Schedule]:
        # Served by the index schedules_due (next_fire_at, id) WHERE status = 'active'.
        sql = f"SELECT {_S} FROM schedules WHERE status = 'active' AND next_fire_at IS NOT NULL"
        params: list[Any] = []
        if after is not None:
            sql += " AND (next_fire_at > ? OR (next_fire_at = ? AND id > ?))"
            t = self._ts(_aware(after[0]))
            params += [t, t, after[1]]
        sql += " ORDER BY next_fire_at, id LIMIT ?"
        params.append(max(0, int(limit)))
        with self._read() as tx:
            rows = tx.execute(sql, params)
        return [self._schedule(r) for r in rows]

    def delete_schedule(
        self,
        schedule_id: str,
        now: datetime,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> bool:
        t = self._ts(now)
        with self._write() as tx:
            self._check_version(tx, schedule_id, expected_version)
            # The runs first, the schedule last: the event feed takes a run event's
            # owner from its schedule's row.
            rows = tx.execute(
                f"SELECT {_S} FROM schedules WHERE id = ?{self._for_update}", (schedule_id,)
            )
            if not rows:
                return False
            if audit is not None:
                before = self._schedule(rows[0]).to_dict()
                self._audit_tx(tx, [dataclasses.replace(audit, before=before)])
            tx.execute(
                "UPDATE runs SET status = 'cancelled', finished_at = ?, lease_until = NULL,"
                " cancel_requested = TRUE, error = 'schedule deleted'"
                f" WHERE schedule_id = ? AND status IN {_WAITING}",
                (t, schedule_id),
            )
            tx.execute(
                "UPDATE runs SET cancel_requested = TRUE"
                " WHERE schedule_id = ? AND status = 'running'",
                (schedule_id,),
            )
            tx.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
            self._notify_tx(tx)
        return True

    def set_paused(
        self,
        schedule_ids: Sequence[str] | None,
        paused: bool,
        now: datetime,
        next_fire: NextFire,
        audit: AuditEntry | None = None,
    ) -> list[Schedule]:
        if schedule_ids is not None and not schedule_ids:
            return []
        now = _aware(now)
        with self._write() as tx:
            # Resuming also picks up a schedule paused by the engine without the flag.
            sql = f"SELECT {_S} FROM schedules WHERE " + (
                "paused = FALSE" if paused else "(paused = TRUE OR status = 'paused')"
            )
            params: list[Any] = []
            if schedule_ids is not None:
                cond, param = self._in("id", list(schedule_ids))
                sql += f" AND {cond}"
                params.append(param)
            rows = tx.execute(sql + " ORDER BY id" + self._for_update, params)
            changed: list[Schedule] = []
            entries: list[AuditEntry] = []
            for row in rows:
                s = self._schedule(row)
                before = s
                if paused:
                    status: ScheduleStatus = "paused" if s.status == "active" else s.status
                    s = s.replace(paused=True, paused_at=now, status=status, updated_at=now)
                elif s.status == "paused":
                    s = s.replace(paused=False, paused_at=None, status="active", updated_at=now)
                    s = s.replace(next_fire_at=utc(next_fire(s, now)))
                else:  # a finished schedule stays finished
                    s = s.replace(paused=False, paused_at=None, updated_at=now)
                s = s.replace(version=s.version + 1)
                changed.append(s)
                if audit is not None:
                    entries.append(
                        dataclasses.replace(
                            audit,
                            target=f"schedule:{s.id}",
                            before=before.to_dict(),
                            after=s.to_dict(),
                        )
                    )
            if changed:
                ts = self._ts
                tx.executemany(
                    "UPDATE schedules SET paused = ?, paused_at = ?, status = ?,"
                    " next_fire_at = ?, updated_at = ?, revision = revision + 1,"
                    " version = version + 1 WHERE id = ?",
                    [
                        (s.paused, ts(s.paused_at), s.status, ts(s.next_fire_at), ts(now), s.id)
                        for s in changed
                    ],
                )
                self._audit_tx(tx, entries)
                self._notify_tx(tx)
        return changed

    # -- firing ----------------------------------------------------------------------

    def next_wakeup(self) -> datetime | None:
        with self._read() as tx:
            rows = tx.execute(
                "SELECT (SELECT next_fire_at FROM schedules WHERE status = 'active'"
                " AND next_fire_at IS NOT NULL ORDER BY next_fire_at LIMIT 1),"
                f" (SELECT due_at FROM runs WHERE status IN {_WAITING} ORDER BY due_at LIMIT 1)"
            )
        found = [t for t in (self._dt(v) for v in rows[0]) if t is not None]
        return min(found, default=None)

    def fire_due(
        self,
        now: datetime,
        plan: FirePlanner,
        limit: int,
        *,
        ended: Collection[str] = frozenset(),
    ) -> list[Run]:
        return self._fire(now, plan, limit, None, ended=ended).fired

    def fire_and_claim(
        self,
        now: datetime,
        plan: FirePlanner,
        limit: int,
        claim: ClaimRequest,
        hold: Callable[[], bool] | None = None,
        *,
        ended: Collection[str] = frozenset(),
    ) -> FireResult:
        try:
            return self._fire(now, plan, limit, claim, hold, ended=ended)
        except _Abandoned:
            return FireResult([], [])

    def _fire(
        self,
        now: datetime,
        plan: FirePlanner,
        limit: int,
        claim: ClaimRequest | None,
        hold: Callable[[], bool] | None = None,
        *,
        ended: Collection[str] = frozenset(),
    ) -> FireResult:
        now = _aware(now)
        t_now = self._ts(now)
        with self._write() as tx:
            due = self._due_revisions(tx, t_now, max(0, int(limit)), lock=True)
            if not due:
                return FireResult([], [])
            known = self._known_due(tx, due)
            schedules = [k[1] for k in known]
            # As stored (data, retry): no need to encode them again for the runs.
            stored_texts = {k[1].id: (k[2], k[3]) for k in known}
            unfinished: dict[str, list[Run]] = defaultdict(list)
            cond, param = self._in("schedule_id", [s.id for s in schedules])
            for row in tx.execute(
                f"SELECT {_R} FROM runs WHERE {cond} AND status IN {_ACTIVE}"
                " ORDER BY scheduled_for, id",
                (param,),
            ):
                # A run the firing node has ended, whose end is not written yet, is over
                # for this fire (``Store.fire_due``): the one place that rule is applied.
                if row[0] not in ended:
                    unfinished[row[1]].append(self._run(row))
            if hold is not None and unfinished:
                # Prepared ahead: a schedule whose earlier run may still end before the
                # fire time is left for the fire at that time, where overlap sees it.
                known = [k for k in known if k[1].id not in unfinished]

            planned: list[tuple[Schedule, PlannedRun]] = []
            updates: list[tuple[Any, ...]] = []
            cancels: list[str] = []
            # What the cache holds once this commits: a schedule that fires again, as
            # this transaction leaves its row (one revision later).
            after: list[tuple[str, _Known | None]] = []
            ts = self._ts
            for revision, s, data_text, retry_text in known:
                fp: FirePlan = plan(s, unfinished.get(s.id, []), now)
                planned.extend((s, p) for p in fp.runs)
                updates.append(
                    (ts(fp.next_fire_at), ts(fp.last_fire_at), fp.execution_count, fp.status, s.id)
                )
                cancels.extend(fp.cancel_run_ids)
                fired = None
                if fp.status == "active" and fp.next_fire_at is not None:
                    fired = s.replace(
                        next_fire_at=utc(fp.next_fire_at),
                        last_fire_at=utc(fp.last_fire_at),
                        execution_count=fp.execution_count,
                    )
                after.append(
                    (s.id, None if fired is None else (revision + 1, fired, data_text, retry_text))
                )

            taken: dict[str, int] = {}
            more = True
            if claim is not None:
                taken, more = self._claim_fired(tx, claim, planned, unfinished, now)
            node = claim.node_id if claim is not None else None
            lease_until = _aware(claim.lease_until) if claim is not None else None
            t_lease = ts(lease_until)
            new_rows: list[tuple[Any, ...]] = []
            claimed_rows: list[tuple[Any, ...]] = []  # CLAIMED_RUN_COLUMNS
            new_runs: list[Run] = []
            # Every run claimed here has the same first attempt (records are immutable).
            first_attempt = (Attempt(number=1, status="running", started_at=now, node=node),)
            for s, p in planned:
                scheduled_for, due_at = _aware(p.scheduled_for), _aware(p.due_at)
                t_scheduled = ts(scheduled_for)
                t_due = t_scheduled if due_at is scheduled_for else ts(due_at)
                final = p.status not in ACTIVE_RUN_STATUSES
                data_json, retry_text = stored_texts[s.id]
                if p.data is not None:
                    data_json = dumps(p.data, "data")
                if p.id in taken:
                    status, attempt, started, run_node, lease = "running", 1, now, node, lease_until
                    attempts: tuple[Attempt, ...] = first_attempt
                    claimed_rows.append(
                        (
                            p.id,
                            s.id,
                            s.task,
                            t_scheduled,
                            p.trigger,
                            data_json,
                            t_due,
                            s.priority,
                            float(s.timeout),
                            retry_text,
                            node_defaults_text(s.node_defaults),
                            s.version,
                        )
                    )
                else:
                    status, attempt, started, run_node, lease = p.status, 0, None, None, None
                    attempts = ()
                    new_rows.append(
                        (
                            p.id,
                            s.id,
                            s.task,
                            t_scheduled,
                            p.trigger,
                            data_json,
                            status,
                            0,
                            t_due,
                            None,
                            t_now if final else None,
                            None,
                            p.error,
                            None,
                            None,
                            None,
                            s.priority,
                            None,
                            False,
                            t_now,
                            float(s.timeout),
                            retry_text,
                            node_defaults_text(s.node_defaults),
                            s.version,
                        )
                    )
                new_runs.append(
                    _make_run(
                        (
                            p.id,
                            s.id,
                            s.task,
                            scheduled_for,
                            p.trigger,
                            s.data if p.data is None else p.data,  # s: read for this fire
                            status,
                            attempt,
                            due_at,
                            started,
                            now if final else None,
                            None,
                            p.error,
                            None,
                            run_node,
                            None,
                            s.priority,
                            lease,
                            False,
                            now,
                            s.timeout,
                            s.retry,
                            s.node_defaults,
                            s.version,
                            attempts,
                        )
                    )
                )
            inserted = self._insert_run_rows(tx, new_rows)
            if claimed_rows:
                inserted |= self._insert_claimed_rows(tx, claimed_rows, t_now, node, t_lease)
            self._store_fired(tx, updates)
            if cancels:
                self._cancel_in_tx(tx, cancels, now, "replaced by a newer run")
            created = [r for r in new_runs if r.id in inserted]
            claimed = sorted((r for r in created if r.id in taken), key=lambda r: taken[r.id])
            if claimed:
                self._insert_first_attempts(tx, [r.id for r in claimed], t_now, node)
            if cancels or any(r.status in _WAITING_STATUSES for r in created):
                self._notify_tx(tx)
            if hold is not None and not hold():
                raise _Abandoned  # rolled back: as if this fire had not been prepared
        self._remember(after)
        # A claimed run whose insert conflicted was never taken: claim_runs may find others.
        return FireResult(created, claimed, more=more or len(claimed) < len(taken))

    def count_due(self, at: datetime, limit: int) -> int:
        with self._read() as tx:
            rows = tx.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM schedules WHERE status = 'active'"
                " AND next_fire_at <= ? LIMIT ?) AS due",
                (self._ts(_aware(at)), max(0, int(limit))),
            )
        return int(rows[0][0])

    def read_ahead(self, until: datetime, limit: int) -> int:
        """Decode now the active schedules due by ``until`` (earliest first, at most
        ``limit`` and ``schedule_cache_size``) that the cache does not hold as stored;
        returns how many. Reads without locking: the fire checks every revision again."""
        limit = min(max(0, int(limit)), self.schedule_cache_size)
        if limit == 0:
            return 0
        with self._read() as tx:
            due = self._due_revisions(tx, self._ts(_aware(until)), limit, lock=False)
            stale = [sid for sid, revision in due if not self._holds(sid, revision)]
            rows = self._schedule_rows(tx, stale) if stale else []
        entries: list[tuple[str, _Known | None]] = []
        for row in rows:
            try:
                entries.append((row[0], self._known_row(row)))
            except Exception:
                continue  # the fire pauses it and says why
        self._remember(entries)
        return len(entries)

    def _holds(self, schedule_id: str, revision: int) -> bool:
        entry = self._known.get(schedule_id)
        return entry is not None and entry[0] == revision

    def _known_due(self, tx: Tx, due: Sequence[Sequence[Any]]) -> list[_Known]:
        """The due schedules, in ``due`` order: from the cache when it holds the stored
        revision, else decoded from their rows (read in this transaction)."""
        known = self._known
        found = [known.get(sid) for sid, _ in due]
        stale = [sid for (sid, rev), k in zip(due, found, strict=True) if k is None or k[0] != rev]
        self.cache_hits += len(due) - len(stale)
        self.cache_misses += len(stale)
        if not stale:
            return found  # type: ignore[return-value]  # none is None
        read: dict[str, _Known] = {}
        unreadable: list[str] = []
        for row in self._schedule_rows(tx, stale):
            try:
                read[row[0]] = self._known_row(row)
            except Exception as exc:  # a row edited by hand into something invalid
                log.error(
                    "schedule %s cannot be read (%s): paused; fix its row and resume it",
                    row[0],
                    exc,
                )
                unreadable.append(row[0])
        if unreadable:
            # One bad row must not hold up every other fire: it stops being due.
            cond, param = self._in("id", unreadable)
            tx.execute(
                f"UPDATE schedules SET status = 'paused', revision = revision + 1 WHERE {cond}",
                (param,),
            )
        return [
            k if k is not None and k[0] == rev else read[sid]
            for (sid, rev), k in zip(due, found, strict=True)
            if sid in read or (k is not None and k[0] == rev)
        ]

    def _known_row(self, row: Sequence[Any]) -> _Known:
        return (int(row[len(SCHEDULE_COLUMNS)]), self._schedule(row), row[6], row[17])

    def _remember(self, entries: Sequence[tuple[str, _Known | None]]) -> None:
        """Store (``None``: drop) cache entries; beyond ``schedule_cache_size`` the
        oldest go."""
        with self._known_lock:
            known = self._known
            for sid, entry in entries:
                known.pop(sid, None)  # put back last: the newest
                if entry is not None:
                    known[sid] = entry
            excess = len(known) - self.schedule_cache_size
            if excess > 0:
                for sid in list(islice(known, excess)):
                    del known[sid]

    def _claim_fired(
        self,
        tx: Tx,
        claim: ClaimRequest,
        planned: Sequence[tuple[Schedule, PlannedRun]],
        unfinished: Mapping[str, Sequence[Run]],
        now: datetime,
    ) -> tuple[dict[str, int], bool]:
        """Which of the runs a fire creates the node takes at once, as ``claim_runs``
        would take them (their ids, with their rank in claim order); and whether other
        runs may still wait for the node.

        Only when no run created earlier is waiting and due for the node: then the new
        runs are all the candidates, and priority order among them is all that order
        means. The fire transaction holds the fired schedules' rows (SQLite: the file's
        write lock; PostgreSQL: ``FOR UPDATE``) and a claim needs them too, so the
        running runs read in this transaction are exact for those schedules. Task
        limits are counted under ``_lock_claim``, as a claim counts them.
        """
        tasks = frozenset(claim.tasks)
        candidates = [
            (s, p)
            for s, p in planned
            if p.status == "pending" and s.task in tasks and p.due_at <= now
        ]
        if not candidates or claim.limit <= 0:
            return {}, True
        task_cond, task_param = self._in("task", sorted(set(tasks)))
        if tx.execute(
            f"SELECT 1 FROM runs WHERE status IN {_WAITING} AND due_at <= ? AND {task_cond}"
            " LIMIT 1",
            (self._ts(now), task_param),
        ):
            return {}, True  # older runs first: claim_runs ranks them with these
        candidates.sort(key=lambda c: (-c[0].priority, c[1].due_at, c[1].id))
        places = claim.limit
        if claim.share < 1:
            places = min(places, max(1, math.ceil(len(candidates) * claim.share)))
        limited = sorted({s.task for s, _ in candidates if s.task in claim.task_limits})
        allowed_tasks: set[str] = set()
        task_running: dict[str, int] = {}
        if limited:
            _, allowed_tasks = self._lock_claim(tx, [], limited)
            task_running = self._running_per(tx, "task", sorted(allowed_tasks))
        sched_running = {
            sid: sum(1 for r in runs if r.status == "running") for sid, runs in unfinished.items()
        }
        # A queue runs in order: only its oldest unfinished run may start.
        queued: dict[str, list[QueueKey]] = defaultdict(list)
        for s, p in planned:
            if s.overlap == "queue" and p.status in ACTIVE_RUN_STATUSES:
                queued[s.id].append((p.scheduled_for, p.id))
        heads = {sid: queue_head(keys) for sid, keys in queued.items()}
        taken: dict[str, int] = {}
        left_behind = False
        for s, p in candidates:
            if len(taken) >= places:
                left_behind = True
                break
            running = sched_running.get(s.id, 0)
            full = room(s.overlap, s.max_instances, running) == 0
            if s.overlap == "queue":
                # Runs from earlier fires first: claim_runs takes them in order.
                full = full or bool(unfinished.get(s.id))
                head = heads[s.id]
                full = full or not is_queue_head(
                    s.overlap, (p.scheduled_for, p.id), [head] if head else []
                )
            if full:
                left_behind = True
                continue
            if s.task in claim.task_limits:
                if s.task not in allowed_tasks or (
                    task_running.get(s.task, 0) >= claim.task_limits[s.task]
                ):
                    left_behind = True
                    continue
                task_running[s.task] = task_running.get(s.task, 0) + 1
            sched_running[s.id] = running + 1
            taken[p.id] = len(taken)
        return taken, left_behind

    def _cancel_in_tx(self, tx: Tx, run_ids: Sequence[str], now: datetime, why: str) -> None:
        cond, param = self._in("id", list(run_ids))
        tx.execute(
            "UPDATE runs SET status = 'cancelled', finished_at = ?, lease_until = NULL,"
            f" cancel_requested = TRUE, error = ? WHERE {cond} AND status IN {_WAITING}",
            (self._ts(now), why, param),
        )
        tx.execute(
            f"UPDATE runs SET cancel_requested = TRUE WHERE {cond} AND status = 'running'",
            (param,),
        )

    def insert_runs(self, runs: Sequence[Run], audit: AuditEntry | None = None) -> list[Run]:
        if not runs:
            return []
        rows = [self._run_row(r) for r in runs]
        with self._write() as tx:
            inserted = self._insert_run_rows(tx, rows)
            if audit is not None:
                ids = [r.id for r in runs if r.id in inserted]
                after = dict(audit.after) if isinstance(audit.after, dict) else {}
                self._audit_tx(tx, [dataclasses.replace(audit, after={**after, "runs": ids})])
            if inserted:
                self._notify_tx(tx)
        return [_utc_run(r) for r in runs if r.id in inserted]

    def claim_runs(
        self,
        node_id: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        tasks: Collection[str],
        task_limits: Mapping[str, int],
    ) -> list[Run]:
        if limit <= 0 or not tasks:
            return []
        t_now = self._ts(_aware(now))
        with self._write() as tx:
            claimable = set(tasks)
            full = self._full_tasks(tx, claimable, task_limits)
            claimable -= full
            claimed: list[tuple[str, int]] = []  # (run id, rank) in claim order
            rows: list[tuple[Any, ...]] = []
            ranked = False
            while claimable and len(claimed) < limit:
                want = limit - len(claimed)
                candidates = self._claim_candidates(tx, t_now, claimable, want, ranked)
                if not candidates:
                    break
                admitted, newly_full, schedule_full = self._admit(tx, candidates, task_limits)
                if admitted:
                    rows.extend(self._mark_claimed(tx, admitted, node_id, now, lease_until))
                    base = len(claimed)
                    claimed.extend((rid, base + i) for i, rid in enumerate(admitted))
                if schedule_full and not ranked and len(candidates) == want:
                    # Runs of full schedules took places in the plain query: look again
                    # with the query that ranks within each schedule's room.
                    ranked = True
                    continue
                # Only a task that filled up during this batch can have left room unused;
                # drop it and look again. Each round removes a task, so this ends.
                if not newly_full or len(candidates) < want:
                    break
                claimable -= newly_full
            if not claimed:
                return []
            retried = [row[0] for row in rows if row[7] > 1]
            earlier = self._attempts_of(tx, retried)
        order = dict(claimed)
        started = _aware(now)
        runs = []
        for row in rows:
            current = Attempt(number=row[7], status="running", started_at=started, node=node_id)
            if row[0] in earlier:
                previous = tuple(a for a in earlier[row[0]] if a.number != row[7])
                runs.append(self._run(row, (*previous, current)))
            else:
                runs.append(self._run(row, (current,)))
        runs.sort(key=lambda r: order[r.id])
        return runs

    def _full_tasks(self, tx: Tx, tasks: set[str], task_limits: Mapping[str, int]) -> set[str]:
        limited = [t for t in tasks if t in task_limits]
        if not limited:
            return set()
        counts = self._running_per(tx, "task", limited)
        return {t for t in limited if counts.get(t, 0) >= task_limits[t]}

    def _running_per(self, tx: Tx, column: str, keys: Collection[str]) -> dict[str, int]:
        if not keys:
            return {}
        cond, param = self._in(column, list(keys))
        rows = tx.execute(
            f"SELECT {column}, COUNT(*) FROM runs WHERE status = 'running' AND {cond}"
            f" GROUP BY {column}",
            (param,),
        )
        return {k: int(n) for k, n in rows}

    def _claim_candidates(
        self, tx: Tx, t_now: Any, tasks: set[str], want: int, ranked: bool
    ) -> list[tuple[Any, ...]]:
        """Waiting runs due by now, best first; for ``queue`` overlap only the oldest
        unfinished run of its schedule, so a queue runs in order.

        Plain (``ranked`` False): the first ``want`` in claim order, locked with ``SKIP
        LOCKED`` on PostgreSQL so concurrent claimers take different runs; one sort of
        the waiting runs. Ranked: each schedule's waiting runs are also cut to the room
        the schedule has (from the running runs it sees), so runs of full schedules do
        not take the places; it costs a window over every waiting run, so it is the
        second look, when the plain one met full schedules. The room seen here is a
        snapshot; ``_admit`` decides exactly.
        Rows: ``(id, schedule_id, task, overlap, max_instances)``, best first.
        """
        task_cond, task_param = self._in("w.task", sorted(tasks))
        in_queue_order = (
            "(ws.overlap IS NULL OR ws.overlap <> 'queue' OR NOT EXISTS ("
            " SELECT 1 FROM runs e WHERE e.schedule_id = w.schedule_id"
            f"  AND e.status IN {_ACTIVE} AND (e.scheduled_for < w.scheduled_for"
            "  OR (e.scheduled_for = w.scheduled_for AND e.id < w.id))))"
        )
        if not ranked:
            lock = self._skip_locked_r.replace(" OF r ", " OF w ")
            return tx.execute(
                "SELECT w.id, w.schedule_id, w.task, ws.overlap, ws.max_instances"
                " FROM runs w LEFT JOIN schedules ws ON ws.id = w.schedule_id"
                f" WHERE w.status IN {_WAITING} AND w.due_at <= ? AND {task_cond}"
                f" AND {in_queue_order}"
                f" ORDER BY w.priority DESC, w.due_at, w.id LIMIT ?{lock}",
                (t_now, task_param, want),
            )
        ranked_sql = (
            "SELECT c.id, c.schedule_id, c.task, c.overlap, c.max_instances FROM ("
            " SELECT w.id, w.schedule_id, w.task, w.priority, w.due_at,"
            "  ws.overlap, ws.max_instances,"
            "  CASE WHEN ws.id IS NULL OR ws.overlap = 'replace' THEN NULL"
            "   ELSE (CASE WHEN ws.overlap = 'allow' THEN ws.max_instances ELSE 1 END)"
            "    - (SELECT COUNT(*) FROM runs x"
            "       WHERE x.status = 'running' AND x.schedule_id = w.schedule_id) END AS room,"
            "  ROW_NUMBER() OVER (PARTITION BY w.schedule_id"
            "   ORDER BY w.priority DESC, w.due_at, w.id) AS rn"
            " FROM runs w"
            " LEFT JOIN schedules ws ON ws.id = w.schedule_id"
            f" WHERE w.status IN {_WAITING} AND w.due_at <= ? AND {task_cond}"
            f"  AND {in_queue_order}"
            ") c WHERE c.room IS NULL OR c.rn <= c.room"
            " ORDER BY c.priority DESC, c.due_at, c.id LIMIT ?"
        )
        if not self._skip_locked_r:
            return tx.execute(ranked_sql, (t_now, task_param, want))
        # Lock the chosen rows, skipping those another claimer holds; a row that
        # changed meanwhile is re-checked against the outer conditions.
        return tx.execute(
            "SELECT r.id, r.schedule_id, r.task, s.overlap, s.max_instances"
            " FROM runs r LEFT JOIN schedules s ON s.id = r.schedule_id"
            f" WHERE r.id IN (SELECT x.id FROM ({ranked_sql}) x)"
            f" AND r.status IN {_WAITING} AND r.due_at <= ?"
            f" ORDER BY r.priority DESC, r.due_at, r.id{self._skip_locked_r}",
            (t_now, task_param, want, t_now),
        )

    def _admit(
        self, tx: Tx, candidates: list[tuple[Any, ...]], task_limits: Mapping[str, int]
    ) -> tuple[list[str], set[str], bool]:
        """Decide exactly which candidates to claim, best first, within every limit:
        the ids admitted, the tasks found full, and whether a full schedule turned a
        candidate down.

        Takes the claim locks first (``_lock_claim``), then counts running runs in a
        fresh statement, so concurrent claimers on the same schedule or task are
        serialized and each sees what the previous one committed.
        """
        sched_limit: dict[str, int] = {}
        for _, sid, _, overlap, max_instances in candidates:
            if sid is None or overlap is None:
                continue  # a run without a schedule: no schedule limit
            at_most = running_limit(overlap, max_instances)
            if at_most is not None:
                sched_limit[sid] = at_most
        limited_tasks = sorted({c[2] for c in candidates if c[2] in task_limits})
        allowed, allowed_tasks = self._lock_claim(tx, sorted(sched_limit), limited_tasks)
        sched_running = self._running_per(tx, "schedule_id", sorted(allowed))
        task_running = self._running_per(tx, "task", sorted(allowed_tasks))
        admitted: list[str] = []
        newly_full: set[str] = set()
        schedule_full = False
        for rid, sid, task, _, _ in candidates:
            if sid in sched_limit and (
                sid not in allowed or sched_running.get(sid, 0) >= sched_limit[sid]
            ):
                schedule_full = True
                continue
            if task in task_limits:
                if task not in allowed_tasks or task_running.get(task, 0) >= task_limits[task]:
                    newly_full.add(task)  # full, or another claimer holds it: not this round
                    continue
                task_running[task] = task_running.get(task, 0) + 1
            if sid in sched_limit:
                sched_running[sid] = sched_running.get(sid, 0) + 1
            admitted.append(rid)
        return admitted, newly_full, schedule_full

    def _mark_claimed(
        self, tx: Tx, ids: list[str], node_id: str, now: datetime, lease_until: datetime
    ) -> list[tuple[Any, ...]]:
        cond, param = self._in("id", ids)
        t_now = self._ts(_aware(now))
        rows = tx.execute(
            "UPDATE runs SET status = 'running', attempt = attempt + 1, node = ?,"
            " lease_until = ?, started_at = COALESCE(started_at, ?), finished_at = NULL"
            f" WHERE {cond} RETURNING {_R}",
            (node_id, self._ts(_aware(lease_until)), t_now, param),
        )
        tx.execute(
            "INSERT INTO attempts (run_id, number, status, started_at, node)"
            f" SELECT id, attempt, 'running', ?, ? FROM runs WHERE {cond}",
            (t_now, node_id, param),
        )
        return rows

    def heartbeat(
        self,
        node_id: str,
        now: datetime,
        lease_until: datetime,
        run_ids: Collection[str],
        stuck_threads: int = 0,
    ) -> Heartbeat:
        ids = list(run_ids)
        with self._write() as tx:
            # A node taken for dead (and its runs taken over) that beats again is back.
            tx.execute(
                "UPDATE nodes SET heartbeat_at = ?, stopped_at = NULL, stuck_threads = ?"
                " WHERE id = ?",
                (self._ts(_aware(now)), stuck_threads, node_id),
            )
            held: list[tuple[Any, ...]] = []
            if ids:
                cond, param = self._in("id", ids)
                held = tx.execute(
                    f"UPDATE runs SET lease_until = ? WHERE {cond}"
                    " AND status = 'running' AND node = ? RETURNING id, cancel_requested",
                    (self._ts(_aware(lease_until)), param, node_id),
                )
        kept = {rid for rid, _ in held}
        return Heartbeat(
            lost=frozenset(set(ids) - kept),
            cancel_requested=frozenset(rid for rid, flag in held if flag),
        )

    def finish_attempts(self, items: Sequence[FinishItem], now: datetime) -> list[Run | None]:
        now = _aware(now)
        with self._write() as tx:
            return self._finish_batch(tx, items, now)

    def _finish_batch(self, tx: Tx, items: Sequence[FinishItem], now: datetime) -> list[Run | None]:
        """Attempt ends in a few statements for the whole batch, not a few per end.

        The runs are read (and, on PostgreSQL, locked) first; an end is written only
        where its run is still ``running`` with that attempt on that node, as
        ``finish_attempts`` guards each. A run named twice counts once (the first).
        """
        if not items:
            return []
        cond, param = self._in("id", sorted({item[0] for item in items}))
        current = {
            row[0]: row
            for row in tx.execute(f"SELECT {_R} FROM runs WHERE {cond}{self._for_update}", (param,))
        }
        ts = self._ts
        t_now = ts(now)
        held: list[tuple[int, list[Any], AttemptOutcome, Any]] = []
        run_updates: list[tuple[Any, ...]] = []
        attempt_updates: list[tuple[Any, ...]] = []
        logs: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        for index, (run_id, node_id, attempt, outcome) in enumerate(items):
            row = current.get(run_id)
            if (
                row is None
                or run_id in seen
                or row[6] != "running"
                or row[14] != node_id
                or row[7] != attempt
            ):
                continue
            seen.add(run_id)
            retrying = outcome.retry_at is not None
            t_end = t_now if outcome.finished_at is None else ts(_aware(outcome.finished_at))
            values = list(row)
            values[6] = "retrying" if retrying else outcome.status
            if retrying:
                values[8] = ts(utc(outcome.retry_at))
            values[10] = None if retrying else t_end
            result = outcome.result
            if retrying or result is None:
                values[11] = None
            else:
                values[11] = dumps(result, "result")
                if needs_cleaning(values[11]):  # stored alike on every database
                    result = clean_json(result)
                    values[11] = dumps(result, "result")
            error = cut_end(outcome.error, MAX_ERROR_CHARS)
            trace = cut_start(outcome.traceback, MAX_TRACEBACK_CHARS)
            values[12] = error
            values[13] = trace
            values[17] = None
            run_updates.append((*values[6:14], run_id))
            attempt_updates.append((outcome.status, t_end, error, trace, run_id, attempt))
            logs.extend(
                (
                    run_id,
                    log.attempt,
                    ts(_aware(log.at)),
                    log.level,
                    clean_text(log.logger),
                    clean_text(log.message),
                )
                for log in outcome.logs
            )
            held.append((index, values, outcome, result))
        results: list[Run | None] = [None] * len(items)
        if not held:
            return results
        self._bulk_update(
            tx,
            "runs",
            _FINISHED_RUN_COLUMNS,
            run_updates,
            also="lease_until = NULL",
        )
        self._bulk_update(
            tx,
            "attempts",
            ("status", "finished_at", "error", "traceback"),
            attempt_updates,
            keys=("run_id", "number"),
        )
        if logs:
            tx.executemany(
                "INSERT INTO run_logs (run_id, attempt, at, level, logger, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                logs,
            )
        attempts = self._attempts_of(tx, [values[0] for _, values, _, _ in held])
        finished: list[tuple[Run, Any]] = []
        for index, values, outcome, result in held:
            run = self._run(values, attempts.get(values[0], ()))
            if outcome.logs:
                run = run.replace(logs=_utc_logs(outcome.logs))
            results[index] = run
            if run.status != "retrying":
                finished.append((run, result))
        self._enqueue_outcomes(tx, finished, now)
        if len(finished) < len(held):
            self._notify_tx(tx)  # retries are due later: wake whoever will claim them
        return results

    def _enqueue_outcomes(self, tx: Tx, finished: Sequence[tuple[Run, Any]], now: datetime) -> None:
        """Put finished runs (with their results) on their schedules' result or error
        queues, where the schedule has one: one lookup and one insert for the lot."""
        ended = [
            (run, result)
            for run, result in finished
            if run.schedule_id is not None and run.status in ("succeeded", *_FAILED_STATUSES)
        ]
        if not ended:
            return
        cond, param = self._in(
            "id", sorted({run.schedule_id for run, _ in ended if run.schedule_id})
        )
        queues = {
            sid: (result_queue, error_queue)
            for sid, result_queue, error_queue in tx.execute(
                f"SELECT id, result_queue, error_queue FROM schedules WHERE {cond}"
                " AND (result_queue IS NOT NULL OR error_queue IS NOT NULL)",
                (param,),
            )
        }
        if not queues:
            return
        rows: list[tuple[Any, ...]] = []
        t_now = self._ts(now)
        for run, result in ended:
            names = queues.get(run.schedule_id or "")
            if names is None:
                continue
            success = run.status == "succeeded"
            queue = names[0] if success else names[1]
            if queue is None:
                continue
            payload: dict[str, Any] = {
                "run_id": run.id,
                "schedule_id": run.schedule_id,
                "task": run.task,
                "scheduled_for": run.scheduled_for.isoformat(),
                "status": run.status,
                "attempt": run.attempt,
                "result": result if success else None,
            }
            if not success:
                payload["error"] = run.error
            rows.append(
                (
                    queue,
                    run.id,
                    run.schedule_id,
                    "result" if success else "error",
                    dumps(payload, "result"),
                    t_now,
                )
            )
        if rows:
            tx.executemany(
                "INSERT INTO queue_messages (queue, run_id, schedule_id, kind, payload,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def recover_lost(
        self, now: datetime, dead_nodes: Collection[str], retry: RetryPlanner
    ) -> list[Run]:
        now = _aware(now)
        t_now = self._ts(now)
        dead = set(dead_nodes)
        with self._write() as tx:
            where = "lease_until < ?"
            params: list[Any] = [t_now]
            if dead:
                # Dead nodes leave the list of nodes; one that beats again comes back.
                cond, param = self._in("id", sorted(dead))
                tx.execute(
                    f"UPDATE nodes SET stopped_at = ? WHERE {cond} AND stopped_at IS NULL",
                    (t_now, param),
                )
                cond, param = self._in("node", sorted(dead))
                where = f"({where} OR {cond})"
                params.append(param)
            rows = tx.execute(
                f"SELECT {_R} FROM runs WHERE status = 'running' AND {where}"
                f" ORDER BY id{self._skip_locked}",
                params,
            )
            if not rows:
                return []
            runs = [self._run(r) for r in rows]
            run_updates: list[tuple[Any, ...]] = []
            attempt_updates: list[tuple[Any, ...]] = []
            final: list[Run] = []
            for run in runs:
                if run.node in dead:
                    why = f"attempt {run.attempt} lost: node {run.node} died"
                else:
                    lease = run.lease_until.isoformat() if run.lease_until else "?"
                    why = (
                        f"attempt {run.attempt} lost: the lease of node {run.node}"
                        f" lapsed at {lease}"
                    )
                retry_at = None
                if run.cancel_requested:
                    status: RunStatus = "cancelled"
                else:
                    retry_at = retry(run, now)
                    status = "lost" if retry_at is None else "retrying"
                run_updates.append(
                    (
                        status,
                        self._ts(utc(retry_at)),
                        None if retry_at is not None else t_now,
                        why,
                        run.id,
                    )
                )
                attempt_updates.append((t_now, why, run.id, run.attempt))
                if status == "lost":
                    final.append(run.replace(status="lost", error=why))
            tx.executemany(
                "UPDATE runs SET status = ?, due_at = COALESCE(?, due_at), finished_at = ?,"
                " error = ?, lease_until = NULL WHERE id = ?",
                run_updates,
            )
            tx.executemany(
                "UPDATE attempts SET status = 'lost', finished_at = ?, error = ?"
                " WHERE run_id = ? AND number = ? AND status = 'running'",
                attempt_updates,
            )
            self._enqueue_outcomes(tx, [(run, None) for run in final], now)
            self._notify_tx(tx)
            cond, param = self._in("id", [r.id for r in runs])
            after = tx.execute(f"SELECT {_R} FROM runs WHERE {cond} ORDER BY id", (param,))
            return self._runs_with_attempts(tx, after)

    def cancel_run(self, run_id: str, now: datetime, audit: AuditEntry | None = None) -> Run:
        now = _aware(now)
        with self._write() as tx:
            rows = tx.execute(f"SELECT {_R} FROM runs WHERE id = ?{self._for_update}", (run_id,))
            if not rows:
                raise NotFoundError("run", run_id)
            status = rows[0][6]
            if status not in ACTIVE_RUN_STATUSES:
                raise ConflictError(f"run {run_id!r} is already over ({status})")
            before = self._run(rows[0])
            self._cancel_in_tx(tx, [run_id], now, "cancelled")
            self._notify_tx(tx)
            rows = tx.execute(f"SELECT {_R} FROM runs WHERE id = ?", (run_id,))
            run = self._runs_with_attempts(tx, rows)[0]
            if audit is not None:
                self._audit_tx(
                    tx,
                    [
                        dataclasses.replace(
                            audit,
                            before={"status": before.status},
                            after={"status": run.status, "cancel_requested": run.cancel_requested},
                        )
                    ],
                )
            return run

    def get_run(self, run_id: str) -> Run | None:
        with self._read(snapshot=True) as tx:
            rows = tx.execute(f"SELECT {_R} FROM runs WHERE id = ?", (run_id,))
            if not rows:
                return None
            run = self._runs_with_attempts(tx, rows)[0]
            logs = tx.execute(
                "SELECT at, level, logger, message, attempt FROM run_logs"
                " WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
            records = []
            for at, level, logger, message, attempt in logs:
                when = self._dt(at)
                assert when is not None
                records.append(LogRecord(when, level, logger, message, attempt))
            records = self._with_live_logs(tx, run_id, records)
        return run.replace(logs=tuple(records))

    def list_runs(
        self,
        *,
        schedule_id: str | None = None,
        task: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: str | None = None,
        limit: int = 100,
        owner: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Newest ``scheduled_for`` first (ties by id); ``since <= scheduled_for < until``."""
        where: list[str] = []
        params: list[Any] = []
        if owner is not None:
            where.append("r.schedule_id IN (SELECT id FROM schedules WHERE owner = ?)")
            params.append(owner)
        if before is not None:
            where.append("(r.scheduled_for < ? OR (r.scheduled_for = ? AND r.id < ?))")
            t_before = self._ts(_aware(before[0]))
            params.extend([t_before, t_before, before[1]])
        if schedule_id is not None:
            where.append("r.schedule_id = ?")
            params.append(schedule_id)
        if task is not None:
            where.append("r.task = ?")
            params.append(task)
        if status is not None:
            statuses = [status] if isinstance(status, str) else sorted(status)
            unknown = set(statuses) - set(RUN_STATUSES)
            if unknown:
                raise ValidationError(f"unknown run status {sorted(unknown)}", field="status")
            # Inlined (they are checked above) so the partial indexes on status apply.
            where.append(f"r.status IN ({', '.join(repr(str(x)) for x in statuses)})")
        if since is not None:
            where.append("r.scheduled_for >= ?")
            params.append(self._ts(since))
        if until is not None:
            where.append("r.scheduled_for < ?")
            params.append(self._ts(until))
        if before_id is not None:
            where.append(
                "(r.scheduled_for < b.scheduled_for"
                " OR (r.scheduled_for = b.scheduled_for AND r.id < b.id))"
            )
        sql = f"SELECT {_RR} FROM runs r"
        if before_id is not None:
            sql += " JOIN runs b ON b.id = ?"
            params.insert(0, before_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.scheduled_for DESC, r.id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._read(snapshot=True) as tx:
            rows = tx.execute(sql, params)
            return self._runs_with_attempts(tx, rows)

    def count_runs(self, now: datetime, owner: str | None = None) -> dict[str, int]:
        mine, params = ("", []) if owner is None else (f" AND {_OWNED}", [owner])
        with self._read(snapshot=True) as tx:
            if owner is None:
                rows: Sequence[Sequence[Any]] = indexed_status_counts(tx)
            else:
                rows = tx.execute(
                    f"SELECT status, COUNT(*) FROM runs r WHERE 1 = 1{mine} GROUP BY status",
                    params,
                )
            backlog = tx.execute(
                f"SELECT COUNT(*) FROM runs r WHERE status IN {_WAITING} AND due_at <= ?{mine}",
                (self._ts(_aware(now)), *params),
            )
        counts = dict.fromkeys(RUN_STATUSES, 0)
        counts.update({status: int(n) for status, n in rows})
        counts["backlog"] = int(backlog[0][0])
        return counts

    def task_stats(
        self, since: datetime | None = None, owner: str | None = None
    ) -> list[TaskStats]:
        where, params = "1 = 1", []
        if since is not None:
            where, params = "r.scheduled_for >= ?", [self._ts(since)]
        if owner is not None:
            where += f" AND {_OWNED}"
            params.append(owner)
        counts: dict[str, dict[str, int]] = {}
        with self._read(snapshot=True) as tx:
            if since is None and owner is None:
                counts, durations = indexed_task_stats(tx, self._seconds)
            else:
                counts, durations = self._scanned_task_stats(tx, where, params)
        return task_stats_of(counts, durations)

    def run_stats(
        self, now: datetime, since: datetime | None = None, owner: str | None = None
    ) -> tuple[list[TaskStats], dict[str, int]]:
        if since is not None or owner is not None:
            return super().run_stats(now, since, owner)
        with self._read(snapshot=True) as tx:
            return indexed_run_stats(tx, self._seconds, self._ts(_aware(now)))

    def _scanned_task_stats(
        self, tx: Tx, where: str, params: Sequence[Any]
    ) -> tuple[dict[str, dict[str, int]], dict[str, tuple[float | None, float | None]]]:
        """``indexed_task_stats`` over the runs matching ``where`` (alias ``r``): these
        are read (through the index on ``scheduled_for`` when ``since`` is given)."""
        counts: dict[str, dict[str, int]] = {}
        for task, status, n in tx.execute(
            "SELECT r.task, r.status, COUNT(*)"
            f" FROM runs r WHERE {where} AND r.status NOT IN ('skipped', 'missed')"
            " GROUP BY r.task, r.status ORDER BY r.task",
            params,
        ):
            counts.setdefault(task, {})[status] = int(n)
        return counts, self._duration_percentiles(tx, where, params)

    # -- queues ----------------------------------------------------------------------

    def read_queue(
        self, name: str, *, consume: bool = True, limit: int = 100, owner: str | None = None
    ) -> list[QueueMessage]:
        limit = max(0, int(limit))
        mine = ""
        params: list[Any] = [name]
        if owner is not None:
            mine = " AND schedule_id IN (SELECT id FROM schedules WHERE owner = ?)"
            params.append(owner)
        params.append(limit)
        if consume:
            with self._write() as tx:
                rows = tx.execute(
                    "DELETE FROM queue_messages WHERE id IN (SELECT id FROM queue_messages"
                    f" WHERE queue = ?{mine} ORDER BY id LIMIT ?{self._skip_locked})"
                    f" RETURNING {_Q}",
                    params,
                )
        else:
            with self._read() as tx:
                rows = tx.execute(
                    f"SELECT {_Q} FROM queue_messages WHERE queue = ?{mine} ORDER BY id LIMIT ?",
                    params,
                )
        messages = []
        for mid, queue, run_id, schedule_id, kind, payload, created in sorted(rows):
            at = self._dt(created)
            assert at is not None
            messages.append(
                QueueMessage(int(mid), queue, run_id, schedule_id, kind, loads(payload), at)
            )
        return messages

    # -- nodes -----------------------------------------------------------------------

    def register_node(self, node: Node, task_specs: Sequence[TaskSpec] = ()) -> None:
        ts = self._ts
        with self._write() as tx:
            tx.execute(
                f"INSERT INTO nodes ({', '.join(NODE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,"
                " tasks = excluded.tasks, stopped_at = NULL",
                (
                    node.id,
                    node.host,
                    node.pid,
                    ts(_aware(node.started_at)),
                    ts(_aware(node.heartbeat_at)),
                    dumps(sorted(node.tasks), "tasks"),
                ),
            )
            if node.tasks:
                specs = {spec.name: spec for spec in task_specs}
                tx.executemany(
                    "INSERT INTO published_tasks (name, spec) VALUES (?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET spec = COALESCE(excluded.spec, published_tasks.spec)",
                    [
                        (t, dumps(specs[t].to_dict(), "spec") if t in specs else None)
                        for t in sorted(set(node.tasks))
                    ],
                )

    def deregister_node(self, node_id: str, now: datetime) -> None:
        t_now = self._ts(_aware(now))
        with self._write() as tx:
            tx.execute("UPDATE nodes SET stopped_at = ? WHERE id = ?", (t_now, node_id))
            # Whatever it still held is up for recovery from now on.
            tx.execute(
                "UPDATE runs SET lease_until = ? WHERE node = ? AND status = 'running'",
                (t_now, node_id),
            )
            tx.execute("DELETE FROM leader WHERE node_id = ?", (node_id,))

    def list_nodes(self, *, include_stopped: bool = False) -> list[Node]:
        sql = f"SELECT {', '.join(NODE_COLUMNS)}, stuck_threads FROM nodes"
        if not include_stopped:
            sql += " WHERE stopped_at IS NULL"
        with self._read(snapshot=True) as tx:
            rows = tx.execute(sql + " ORDER BY id")
            running = dict(
                tx.execute("SELECT node, COUNT(*) FROM runs WHERE status = 'running' GROUP BY node")
            )
            leader = tx.execute("SELECT node_id FROM leader WHERE id = 1")
        lead = leader[0][0] if leader else None
        return [self._node(r, lead, int(running.get(r[0], 0))) for r in rows]

    def known_tasks(self) -> set[str]:
        with self._read() as tx:
            return {name for (name,) in tx.execute("SELECT name FROM published_tasks")}

    def task_spec(self, name: str) -> TaskSpec | None:
        with self._read() as tx:
            rows = tx.execute("SELECT spec FROM published_tasks WHERE name = ?", (name,))
        if not rows or rows[0][0] is None:
            return None
        return TaskSpec.from_dict(loads(rows[0][0]))

    def try_lead(self, node_id: str, now: datetime, lease_until: datetime) -> bool:
        """Take or renew the lease. Taken over when it lapsed, or at once when the
        database can tell its holder is gone (``_leader_gone``)."""
        try:
            t_until = self._ts(_aware(lease_until))
            with self._write() as tx:
                rows = tx.execute(f"SELECT node_id, lease_until FROM leader{self._for_update}")
                if not rows:
                    got = tx.execute(
                        "INSERT INTO leader (id, node_id, lease_until) VALUES (1, ?, ?)"
                        " ON CONFLICT (id) DO NOTHING RETURNING node_id",
                        (node_id, t_until),
                    )
                    return bool(got)
                holder, until = rows[0][0], self._dt(rows[0][1])
                assert until is not None
                if holder != node_id and until >= now and not self._leader_gone(tx, holder):
                    return False
                tx.execute(
                    "UPDATE leader SET node_id = ?, lease_until = ? WHERE id = 1",
                    (node_id, t_until),
                )
                if holder != node_id:
                    self._notify_tx(tx)
                return True
        except Exception:  # fail closed: any doubt means "not the leader"
            return False

    def _leader_gone(self, tx: Tx, node_id: str) -> bool:
        """Whether the database can tell at once that the lease holder is gone."""
        rows = tx.execute("SELECT 1 FROM nodes WHERE id = ? AND stopped_at IS NOT NULL", (node_id,))
        return bool(rows)

    def release_lead(self, node_id: str) -> None:
        with self._write() as tx:
            if tx.execute("DELETE FROM leader WHERE node_id = ? RETURNING id", (node_id,)):
                self._notify_tx(tx)

    def dead_nodes(self, now: datetime, stale_after: timedelta | float) -> list[str]:
        if not isinstance(stale_after, timedelta):
            stale_after = timedelta(seconds=stale_after)
        cutoff = self._ts(_aware(now) - stale_after)
        with self._read() as tx:
            rows = tx.execute(
                "SELECT id FROM nodes WHERE stopped_at IS NULL AND heartbeat_at < ? ORDER BY id",
                (cutoff,),
            )
        return [r[0] for r in rows]

    # -- maintenance -----------------------------------------------------------------

    def delete_runs_before(self, cutoff: datetime) -> int:
        t_cut = self._ts(_aware(cutoff))
        total = 0
        while True:  # in chunks, so a big cleanup never holds the write lock for long
            with self._write() as tx:
                ids = [
                    r[0]
                    for r in tx.execute(
                        "SELECT id FROM runs WHERE scheduled_for < ? AND finished_at < ?"
                        f" AND status NOT IN {_ACTIVE} LIMIT ?",
                        (t_cut, t_cut, _DELETE_CHUNK),
                    )
                ]
                if ids:
                    cond, param = self._in("run_id", ids)
                    tx.execute(f"DELETE FROM run_logs WHERE {cond}", (param,))
                    tx.execute(f"DELETE FROM run_live_logs WHERE {cond}", (param,))
                    tx.execute(f"DELETE FROM attempts WHERE {cond}", (param,))
                    cond, param = self._in("id", ids)
                    tx.execute(f"DELETE FROM runs WHERE {cond}", (param,))
            total += len(ids)
            if len(ids) < _DELETE_CHUNK:
                break
        self.delete_events_before(cutoff)  # the event feed is kept as long as runs
        with self._write() as tx:  # and so are the audit log and idempotency keys
            self._delete_access_before(tx, t_cut)
        return total

    # -- monitoring ------------------------------------------------------------------

    def gauges(self, now: datetime, alive_since: datetime) -> Gauges:
        with self._read() as tx:
            schedules = {
                str(k): int(n)
                for k, n in tx.execute("SELECT status, COUNT(*) FROM schedules GROUP BY status")
            }
            # Each count matches a partial index's condition exactly, so it reads the index.
            running = int(tx.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'")[0][0])
            waiting = {
                str(k): int(n)
                for k, n in tx.execute(
                    f"SELECT status, COUNT(*) FROM runs WHERE status IN {_WAITING} GROUP BY status"
                )
            }
            oldest = tx.execute(
                f"SELECT MIN(due_at) FROM runs WHERE status IN {_WAITING} AND due_at <= ?",
                (self._ts(now),),
            )[0][0]
            nodes, stuck = tx.execute(
                "SELECT COUNT(*), COALESCE(SUM(stuck_threads), 0) FROM nodes"
                " WHERE stopped_at IS NULL AND heartbeat_at >= ?",
                (self._ts(alive_since),),
            )[0]
        due = self._dt(oldest)
        return Gauges(
            schedules={k: schedules.get(k, 0) for k in ("active", "paused", "finished")},
            runs_active={
                "pending": waiting.get("pending", 0),
                "running": running,
                "retrying": waiting.get("retrying", 0),
            },
            oldest_due_age=max(0.0, (now - due).total_seconds()) if due is not None else 0.0,
            nodes=int(nodes),
            stuck_threads=int(stuck),
        )


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
