"""The SQL of a running attempt's log lines (both dialects): written by the executing
node while the attempt runs, read with the run, superseded by the attempt's final lines.

``SqlStore`` inherits this. An attempt's final lines (``run_logs``, written with its end)
always hold every line written here for it, so a reader takes an attempt's lines from
``run_live_logs`` only when ``run_logs`` has none for it: an attempt still running, or
one lost with its node, whose partial lines are all it has.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from tickwork.models import LogRecord
from tickwork.store.sql_hooks import SqlHooks

if TYPE_CHECKING:
    from tickwork.store.sql import Tx


class RunLinesSql(SqlHooks):
    """Live log lines of running attempts (a mixin of ``SqlStore``)."""

    @abstractmethod
    def _list(self, values: Collection[Any]) -> Any: ...

    def write_live_logs(
        self, lines: Sequence[tuple[str, LogRecord]], ended: Collection[tuple[str, int]] = ()
    ) -> set[tuple[str, int]]:
        """Append ``lines`` (run id, record) in one statement, and delete the lines of
        the ``ended`` attempts (run id, attempt) whose final lines are stored; one
        transaction. Returns the ``ended`` attempts that are settled: no longer running
        (their end written, or taken over as lost); the others may still get their end.
        """
        settled: set[tuple[str, int]] = set()
        with self._write() as tx:
            if lines:
                tx.executemany(
                    self._sql("insert_live_line"),
                    [
                        (run_id, r.attempt, self._ts(r.at), r.level, r.logger, r.message)
                        for run_id, r in lines
                    ],
                )
            if ended:
                tx.executemany(
                    self._sql("delete_live_lines_stored"),
                    [(run_id, n, run_id, n) for run_id, n in ended],
                )
                runs = self._list({run_id for run_id, _ in ended})
                over = tx.execute(self._sql("attempts_over"), (runs,))
                settled = {(run_id, int(n)) for run_id, n in over} & set(ended)
        return settled

    def delete_live_logs_of_deleted_runs(self, t_cut: Any) -> None:
        """After retention deleted runs: the live lines of runs that are gone (written
        before the cutoff, ``t_cut`` as stored). Apart from the runs' own deletion, so
        that deletion commits as soon as it would without these."""
        with self._write() as tx:
            tx.execute(self._sql("delete_live_lines_of_deleted_runs"), (t_cut,))

    def _live_logs_tx(self, tx: Tx, run_id: str, final: Collection[int]) -> list[LogRecord]:
        """The live lines of the run's attempts that have no final lines (``final``: the
        attempts that have), in the order written."""
        records = []
        for at, level, logger, message, attempt in tx.execute(self._sql("live_lines"), (run_id,)):
            if attempt in final:
                continue
            when = self._dt(at)
            assert when is not None
            records.append(LogRecord(when, level, logger, message, attempt))
        return records

    def _with_live_logs(self, tx: Tx, run_id: str, records: list[LogRecord]) -> list[LogRecord]:
        """A run's final lines with the live lines of its other attempts, by attempt."""
        live = self._live_logs_tx(tx, run_id, {r.attempt for r in records})
        if not live:
            return records
        return sorted(records + live, key=lambda r: r.attempt)  # stable: lines keep order
