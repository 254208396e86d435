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

from tickwork.store.codec import (
    _FINISHED_RUN_COLUMNS,
    CLAIMED_RUN_COLUMNS,
    RUN_COLUMNS,
    parse_json,
)
from tickwork.store.dialect import SqlCore, Tx, statements
from tickwork.store.named_sql import fill, values_rows

T = TypeVar("T")

_RUN_WIDTH: Final = len(RUN_COLUMNS)
_CLAIMED_WIDTH: Final = len(CLAIMED_RUN_COLUMNS)
_DUE_REVISIONS_JSON: Final = statements("sqlite")["due_revisions_json"]
_SCHEDULE_ROWS_JSON: Final = statements("sqlite")["schedule_rows_json"]
#: The width of a row of each multi-row ``UPDATE`` (``_update_rows``).
_UPDATE_WIDTH: Final = {
    "store_run_ends": len(_FINISHED_RUN_COLUMNS) + 1,
    "store_attempt_ends": 6,
    "store_fired": 5,
}
#: Parameters per multi-row statement at most (SQLite's default limit is 32,766; a
#: build may set it lower, see ``SQLiteStore.open``).
_MAX_PARAMETERS: Final = 30_000
#: Rows per multi-row statement at most: compiling grows with the rows, running a
#: statement costs the same per row from about 64 rows up.
ROWS_PER_STATEMENT: Final = 256


@lru_cache(maxsize=256)
def _as_json(sql: str, columns: str) -> str:
    """The named SELECT ``sql`` read as one JSON array (``rows_as_json``), built once."""
    return fill(statements("sqlite")["rows_as_json"], columns=columns, select=sql)


@lru_cache(maxsize=128)
def _many(name: str, width: int, rows: int) -> str:
    """The named SQLite statement ``name`` for ``rows`` rows of ``width`` values: built
    once per size (``_chunks`` makes a handful of sizes), then a cache lookup."""
    return fill(statements("sqlite")[name], values=values_rows(width, rows))


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
                _many("bulk_insert_runs", _RUN_WIDTH, len(chunk)),
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
        changed = 0
        for chunk in _chunks(rows, (self.max_parameters - 3) // _CLAIMED_WIDTH):
            changed += tx.executemany(
                _many("bulk_insert_claimed_runs", _CLAIMED_WIDTH, len(chunk)),
                [[t_now, node, t_lease, *(value for row in chunk for value in row)]],
            )
        return self._inserted(tx, rows, changed)

    def _update_rows(self, tx: Tx, name: str, rows: Sequence[Sequence[Any]]) -> None:
        width = _UPDATE_WIDTH[name]
        for chunk in _chunks(rows, self.max_parameters // width):
            tx.executemany(
                _many(name, width, len(chunk)), [[value for row in chunk for value in row]]
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
                _many("bulk_insert_first_attempts", 1, len(chunk)), [[t_started, node, *chunk]]
            )
