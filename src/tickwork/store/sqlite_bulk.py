"""SQLite's bulk writes: many rows per statement instead of a statement per row.

A fire writes thousands of rows. SQLite then lets go of the GIL once per statement
instead of once per row, and the event loop's thread runs (starting the last batch's
tasks) while SQLite works instead of the two threads taking turns at every row. Rows
read by a fire come back as one JSON array: one step of SQLite instead of one per row.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from functools import lru_cache
from typing import Any, Final, TypeVar

from tickwork.store.codec import CLAIMED_RUN_COLUMNS, RUN_COLUMNS, SCHEDULE_COLUMNS, parse_json
from tickwork.store.dialect import SqlCore, Tx

T = TypeVar("T")

_R_COLUMNS: Final = ", ".join(RUN_COLUMNS)
_CLAIMED_COLUMNS: Final = ", ".join(CLAIMED_RUN_COLUMNS)
_CLAIMED_VALUES: Final = ", ".join(f"column{i + 1}" for i in range(len(CLAIMED_RUN_COLUMNS)))
_S_COLUMNS: Final = ", ".join(SCHEDULE_COLUMNS)
_DUE_REVISIONS_JSON: Final = (
    "SELECT json_group_array(json_array(id, revision)) FROM"
    " (SELECT id, revision FROM schedules WHERE status = 'active' AND next_fire_at <= ?"
    " ORDER BY next_fire_at, id LIMIT ?)"
)
_SCHEDULE_ROWS_JSON: Final = (
    f"SELECT json_group_array(json_array({_S_COLUMNS}, revision)) FROM schedules"
    " WHERE id IN (SELECT value FROM json_each(?))"
)
#: Parameters per multi-row statement at most (SQLite's default limit is 32,766; a
#: build may set it lower, see ``SQLiteStore.open``).
_MAX_PARAMETERS: Final = 30_000
#: Rows per multi-row statement at most: compiling grows with the rows, running a
#: statement costs the same per row from about 64 rows up.
ROWS_PER_STATEMENT: Final = 256


@lru_cache(maxsize=256)
def _as_json(sql: str, columns: str) -> str:
    return f"SELECT json_group_array(json_array({columns})) FROM ({sql})"


@lru_cache(maxsize=64)
def _values(columns: int, rows: int) -> str:
    row = "(" + ", ".join(["?"] * columns) + ")"
    return ", ".join([row] * rows)


def _chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Pieces of at most ``size`` rows (and at most ``ROWS_PER_STATEMENT``) whose lengths
    are powers of two: a multi-row statement costs as much to compile as to run, and
    ``sqlite3`` caches compiled statements by their text, so a burst reuses a handful of
    statements instead of compiling one per batch size."""
    step = 1 << (max(1, min(size, ROWS_PER_STATEMENT)).bit_length() - 1)
    start, total = 0, len(rows)
    while start < total:
        while total - start < step:
            step >>= 1
        yield rows[start : start + step]
        start += step


class SQLiteBulk(SqlCore):
    """The shared statements of ``SqlCore``, many rows at a time."""

    #: Parameters per multi-row statement at most; lowered on open to what this
    #: SQLite build allows.
    max_parameters: int = _MAX_PARAMETERS
    #: ``mark_claimed`` has no ``RETURNING`` here: the claimed runs are read in one step.
    _returns_claimed = False

    # -- bulk writes -----------------------------------------------------------------
    # A fire writes thousands of rows. Many rows per statement, not a statement per row:
    # SQLite then lets go of the GIL once per statement instead of once per row, and
    # the event loop's thread runs (starting the last batch's tasks) while SQLite works
    # instead of the two threads taking turns at every row.

    def _insert_run_rows(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        if not rows:
            return set()
        changed = 0
        for chunk in _chunks(rows, self.max_parameters // len(RUN_COLUMNS)):
            changed += tx.executemany(
                f"INSERT INTO runs ({_R_COLUMNS}) VALUES {_values(len(RUN_COLUMNS), len(chunk))}"
                " ON CONFLICT DO NOTHING",
                [[value for row in chunk for value in row]],
            )
        return self._inserted(tx, rows, changed)

    def _insert_claimed_rows(
        self,
        tx: Tx,
        rows: Sequence[Sequence[Any]],
        t_now: Any,
        node: str | None,
        t_lease: Any,
    ) -> set[str]:
        # The shared values once per statement: a third of the parameters to bind, and
        # of the SQLite work, of the full rows.
        width = len(CLAIMED_RUN_COLUMNS)
        changed = 0
        for chunk in _chunks(rows, (self.max_parameters - 3) // width):
            changed += tx.executemany(
                f"INSERT INTO runs ({_CLAIMED_COLUMNS}, status, attempt, started_at, node,"
                " lease_until, cancel_requested, created_at)"
                f" SELECT {_CLAIMED_VALUES}, 'running', 1, ?1, ?2, ?3, FALSE, ?1"
                f" FROM (VALUES {_values(width, len(chunk))}) WHERE TRUE"
                " ON CONFLICT DO NOTHING",
                [[t_now, node, t_lease, *(value for row in chunk for value in row)]],
            )
        return self._inserted(tx, rows, changed)

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
        width = len(columns) + len(keys)
        sets = ", ".join(
            [f"{c} = u.column{i + 1}" for i, c in enumerate(columns)] + ([also] if also else [])
        )
        where = " AND ".join(
            f"{table}.{k} = u.column{len(columns) + i + 1}" for i, k in enumerate(keys)
        )
        for chunk in _chunks(rows, self.max_parameters // width):
            tx.executemany(
                f"UPDATE {table} SET {sets} FROM (VALUES {_values(width, len(chunk))}) AS u"
                f" WHERE {where}",
                [[value for row in chunk for value in row]],
            )

    # Rows read by a fire, a claim or a batch of ends come as one JSON array: one step
    # of SQLite instead of one per row. Each step lets go of the GIL and takes it back;
    # with the loop and the task threads busy, taking it back waited for them, at every
    # row (a claim and a batch of ends of 100 runs read some 400 rows).

    def _rows(
        self, tx: Tx, sql: str, params: Sequence[Any], columns: str
    ) -> Sequence[Sequence[Any]]:
        found = tx.execute(_as_json(sql, columns), params)
        return parse_json(found[0][0]) if found and found[0][0] else []

    def _due_revisions(
        self, tx: Tx, t_now: Any, limit: int, *, lock: bool
    ) -> Sequence[Sequence[Any]]:
        found = tx.execute(_DUE_REVISIONS_JSON, (t_now, limit))  # the write lock locks
        return parse_json(found[0][0]) if found and found[0][0] else []

    def _schedule_rows(self, tx: Tx, ids: Collection[str]) -> Sequence[Sequence[Any]]:
        found = tx.execute(_SCHEDULE_ROWS_JSON, (json.dumps(list(ids)),))
        return parse_json(found[0][0]) if found and found[0][0] else []

    def _insert_first_attempts(
        self, tx: Tx, run_ids: Sequence[str], t_started: Any, node: str | None
    ) -> None:
        for chunk in _chunks(run_ids, self.max_parameters - 2):
            tx.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, node)"
                f" SELECT column1, 1, 'running', ?, ? FROM (VALUES {_values(1, len(chunk))})",
                [[t_started, node, *chunk]],
            )
