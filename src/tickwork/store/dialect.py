"""The core of the SQL store: one open transaction (``Tx``), the hooks each
dialect provides and the statements the other parts share.

A dialect (``sqlite.py``, ``postgres.py``) supplies connections and transactions, how
an instant and a list travel as parameters, and its locking: SQLite serializes every
write transaction (``BEGIN IMMEDIATE``), so the statements are exact as they stand;
PostgreSQL runs them concurrently and adds row locks with ``SKIP LOCKED`` where two
nodes could otherwise step on each other (the ``@postgres`` variants of the named
statements that lock, ``_lock_claim``).
Statements use ``?`` placeholders; the PostgreSQL dialect rewrites them to ``%s``."""

from __future__ import annotations

from abc import abstractmethod
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from tickwork.models import Attempt, AuditEntry, LogRecord, Run
from tickwork.store.codec import (
    _A,
    _FINISHED_RUN_COLUMNS,
    _Q,
    _R,
    _RR,
    _S,
    CLAIMED_RUN_COLUMNS,
    NODE_COLUMNS,
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    RowCodec,
)
from tickwork.store.named_sql import queries_for
from tickwork.store.owned_runs import owned, owned_messages


class Tx(Protocol):
    """One open transaction: run statements, get rows back as tuples."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run a statement once per row; the number of rows changed (-1 if unknown)."""
        ...


#: Where a claimed run's own values (``CLAIMED_RUN_COLUMNS``) sit between the shared
#: ones in its full row (``RUN_COLUMNS``): before ``due_at`` come its identity and data,
#: between ``due_at`` and ``priority`` the start, after ``priority`` the lease and the
#: settings copied from the schedule.
_DUE: Final = CLAIMED_RUN_COLUMNS.index("due_at")
_PRIORITY: Final = CLAIMED_RUN_COLUMNS.index("priority")
_AFTER: Final = _PRIORITY + 1

#: The named statement counting running runs per value of a column (``_running_per``).
_RUNNING_PER: Final = {"task": "running_per_task", "schedule_id": "running_per_schedule"}


#: The column lists a named statement may name, filled in when the statements load.
COLUMN_LISTS: Final = {
    "{runs}": _R,
    "{r.runs}": _RR,
    "{run_values}": ", ".join("?" for _ in RUN_COLUMNS),
    "{schedules}": _S,
    "{schedule_values}": ", ".join("?" for _ in SCHEDULE_COLUMNS),
    "{attempts}": _A,
    "{queue_messages}": _Q,
    "{nodes}": ", ".join(NODE_COLUMNS),
    "{claimed_runs}": ", ".join(CLAIMED_RUN_COLUMNS),
    "{claimed_values}": ", ".join(f"column{i + 1}" for i in range(len(CLAIMED_RUN_COLUMNS))),
    "{finished_run_sets}": ", ".join(f"{c} = ?" for c in _FINISHED_RUN_COLUMNS),
    "{u.finished_run_sets}": ", ".join(
        f"{c} = u.column{i + 1}" for i, c in enumerate(_FINISHED_RUN_COLUMNS)
    ),
    "{u.finished_run_key}": f"u.column{len(_FINISHED_RUN_COLUMNS) + 1}",
}

#: Not a column list but a condition several statements share, in each dialect's
#: words: the runs (alias r) of one user, deleted schedules' included (owned_runs).
OWNED_RUNS: Final = "{r.owned}"
#: The same rule for queue messages (alias r), in the form a page of a queue needs.
OWNED_MESSAGES: Final = "{r.owned_message}"


@lru_cache(maxsize=4)
def statements(dialect: str) -> Mapping[str, str]:
    """A dialect's named statements, with the column lists they name filled in: built
    once per dialect, so running a fixed statement costs one dictionary lookup."""
    found = {}
    for name, sql in queries_for(dialect).items():
        for token, columns in COLUMN_LISTS.items():
            sql = sql.replace(token, columns)
        sql = sql.replace(OWNED_MESSAGES, owned_messages(dialect))
        found[name] = sql.replace(OWNED_RUNS, owned(dialect))
    return MappingProxyType(found)


def shared_statement(name: str) -> str:
    """A named statement that has no dialect variant, as both dialects run it."""
    return statements("")[name]


class SqlCore(RowCodec):
    """What every part of the SQL store stands on: the hooks a dialect provides
    (connections and transactions, how instants and lists travel, locking) and the
    statements several parts share."""

    #: Which variants of the named statements (``queries/``) this store runs.
    dialect: str = ""
    #: Where the database is, with any password masked (``Store.url``).
    url: str
    #: Whether a ranked claim locks the rows it chose and checks them again (PostgreSQL:
    #: its ``claim_candidates_ranked`` takes ``now`` once more).
    _claim_checks_again: bool = False
    #: A condition with one parameter: the schedule's ``tags`` contain the tag.
    _tag_filter: str

    if TYPE_CHECKING:  # written by AccessSql, the other mixin of SqlStore

        def _audit_tx(self, tx: Tx, entries: Sequence[AuditEntry]) -> None: ...

        def _delete_access_before(self, tx: Tx, cutoff: Any) -> None: ...

        # Written by RunLinesSql, another mixin of SqlStore.
        def _with_live_logs(
            self, tx: Tx, run_id: str, records: list[LogRecord]
        ) -> list[LogRecord]: ...

        def delete_live_logs_of_deleted_runs(self, t_cut: Any) -> None: ...

        # Written by each dialect (``Store.delete_events_before``).
        def delete_events_before(self, cutoff: datetime) -> int: ...

    #: This dialect's named statements, bound when a store class names its dialect.
    _named: Mapping[str, str] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.dialect:
            cls._named = statements(cls.dialect)

    def _sql(self, name: str) -> str:
        """The named statement ``name`` in this store's dialect: one dictionary lookup."""
        return self._named[name]

    @abstractmethod
    def _list(self, values: Collection[Any]) -> Any:
        """A list of values as one parameter: a JSON list on SQLite (``json_each(?)``),
        an array on PostgreSQL (``= ANY(?::text[])``), as the named statements take it."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]:
        """A write transaction: committed when the block ends, rolled back on error."""

    @abstractmethod
    def _read(self, snapshot: bool = False) -> AbstractContextManager[Tx]:
        """Reads; with ``snapshot`` every statement sees the same committed state."""

    @abstractmethod
    def _seconds(self, value: Any) -> float:
        """A duration (``finished_at - started_at`` as the database computes it) in
        seconds, the same float as the difference of the two instants read back."""

    def _notify_tx(self, tx: Tx) -> None:
        """Tell other nodes, when this transaction commits, that work changed."""

    def _rows(
        self, tx: Tx, sql: str, params: Sequence[Any], columns: str
    ) -> Sequence[Sequence[Any]]:
        """The rows of the SELECT ``sql``, whose result columns are named ``columns``
        (comma-separated). SQLite's store reads them in one step (``SQLiteBulk._rows``)."""
        return tx.execute(sql, params)

    def _lock_claim(
        self, tx: Tx, schedule_ids: list[str], tasks: list[str]
    ) -> tuple[set[str], set[str]]:
        """Serialize claimers over the schedules and tasks whose running runs are limited.

        Returns the schedules and tasks this transaction may claim runs of; after it
        returns, the running runs counted in the transaction for those are exact until
        commit. SQLite's write transactions are already serial: everything is returned.
        """
        return set(schedule_ids), set(tasks)

    def _update_rows(self, tx: Tx, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """The named ``UPDATE`` ``name`` once per row (SQLite: many rows a statement).
        A row must not repeat another's keys."""
        tx.executemany(self._sql(name), rows)

    def _insert_run_rows(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        """Insert run rows (``RUN_COLUMNS`` order), dropping conflicts; the ids inserted."""
        if not rows:
            return set()
        changed = tx.executemany(self._sql("insert_runs"), rows)
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
        # RUN_COLUMNS from status to trace_flags, then from lease_until to created_at.
        started = ("running", 1)
        unfinished = (t_now, None, None, None, None, node, None, None, None)
        leased = (t_lease, False, t_now)
        return self._insert_run_rows(
            tx,
            [
                (
                    *row[:_DUE],
                    *started,
                    row[_DUE],
                    *unfinished,
                    row[_PRIORITY],
                    *leased,
                    *row[_AFTER:],
                )
                for row in rows
            ],
        )

    def _inserted_ids(self, tx: Tx, ids: Sequence[str]) -> set[str]:
        """Which of these fresh run ids are in the table: every run has a fresh id, so
        it is there iff its insert went through (a conflict on (schedule_id,
        scheduled_for) dropped it)."""
        return {r[0] for r in tx.execute(self._sql("runs_present"), (self._list(ids),))}

    def _insert_first_attempts(
        self, tx: Tx, run_ids: Sequence[str], t_started: Any, node: str | None
    ) -> None:
        """Attempt 1, running on ``node``, of runs claimed as they are created."""
        tx.executemany(
            self._sql("insert_first_attempt"), [(run_id, t_started, node) for run_id in run_ids]
        )

    def _attempts_of(self, tx: Tx, run_ids: Collection[str]) -> dict[str, tuple[Attempt, ...]]:
        if not run_ids:
            return {}
        grouped: dict[str, list[Attempt]] = defaultdict(list)
        for row in self._rows(tx, self._sql("attempts_of_runs"), (self._list(run_ids),), _A):
            grouped[row[0]].append(self._attempt(row))
        return {k: tuple(v) for k, v in grouped.items()}

    def _runs_with_attempts(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> list[Run]:
        attempts = self._attempts_of(tx, [row[0] for row in rows])
        return [self._run(row, attempts.get(row[0], ())) for row in rows]

    def _cancel_in_tx(self, tx: Tx, run_ids: Sequence[str], now: datetime, why: str) -> None:
        ids = self._list(run_ids)
        tx.execute(self._sql("cancel_waiting_runs"), (self._ts(now), why, ids))
        tx.execute(self._sql("ask_running_runs_to_cancel"), (ids,))

    def _running_per(self, tx: Tx, column: str, keys: Collection[str]) -> dict[str, int]:
        """Running runs per ``column`` value (``task`` or ``schedule_id``) among ``keys``."""
        if not keys:
            return {}
        rows = self._rows(tx, self._sql(_RUNNING_PER[column]), (self._list(keys),), f"{column}, n")
        return {k: int(n) for k, n in rows}
