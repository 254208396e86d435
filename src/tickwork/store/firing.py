"""Firing: due schedules become runs in one transaction per fire (the plan from
``policy``, the runs inserted, the schedules advanced, replaced runs cancelled),
optionally claiming the new runs for the firing node."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from tickwork.models import ACTIVE_RUN_STATUSES, Attempt, FirePlan, PlannedRun, Run, Schedule
from tickwork.store.base import ClaimRequest, FirePlanner, FireResult
from tickwork.store.claiming import Claiming
from tickwork.store.codec import (
    _WAITING_STATUSES,
    RunAt,
    _aware,
    _make_run,
    dumps,
    node_defaults_text,
    utc,
)
from tickwork.store.dialect import Tx
from tickwork.store.schedule_cache import ScheduleCache, _Known


class _Abandoned(Exception):
    """A fire prepared ahead of its time whose node stopped before that time."""


class Firing(ScheduleCache, Claiming):
    """Fires, as ``fire_due`` and ``fire_and_claim`` make them."""

    def next_wakeup(self) -> datetime | None:
        with self._read() as tx:
            rows = tx.execute(self._sql("next_wakeup"))
        found = [t for t in (self._dt(v) for v in rows[0]) if t is not None]
        return min(found, default=None)

    def count_due(self, at: datetime, limit: int) -> int:
        with self._read() as tx:
            rows = tx.execute(self._sql("count_due"), (self._ts(_aware(at)), max(0, int(limit))))
        return int(rows[0][0])

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
            unfinished = self._unfinished_runs(tx, [s.id for s in schedules], ended)
            if hold is not None and unfinished:
                # Prepared ahead: a schedule whose earlier run may still end before the
                # fire time is left for the fire at that time, where overlap sees it.
                known = [k for k in known if k[1].id not in unfinished]
            planned, updates, cancels, after = self._plan_each(known, unfinished, plan, now)

            taken: dict[str, int] = {}
            more = True
            if claim is not None:
                taken, more = self._claim_fired(tx, claim, planned, unfinished, now)
            node = claim.node_id if claim is not None else None
            lease_until = _aware(claim.lease_until) if claim is not None else None
            new_rows, claimed_rows, new_runs = self._fired_rows(
                planned, taken, stored_texts, now, node, lease_until
            )
            inserted = self._insert_run_rows(tx, new_rows)
            if claimed_rows:
                t_lease = self._ts(lease_until)
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

    def _unfinished_runs(
        self, tx: Tx, schedule_ids: list[str], ended: Collection[str]
    ) -> dict[str, list[Run]]:
        """The runs of these schedules that are not over, by schedule, oldest first."""
        unfinished: dict[str, list[Run]] = defaultdict(list)
        for row in tx.execute(self._sql("unfinished_runs"), (self._list(schedule_ids),)):
            # A run the firing node has ended, whose end is not written yet, is over
            # for this fire (``Store.fire_due``): the one place that rule is applied.
            if row[RunAt.id] not in ended:
                unfinished[row[RunAt.schedule_id]].append(self._run(row))
        return unfinished

    def _plan_each(
        self,
        known: Sequence[_Known],
        unfinished: Mapping[str, list[Run]],
        plan: FirePlanner,
        now: datetime,
    ) -> tuple[
        list[tuple[Schedule, PlannedRun]],
        list[tuple[Any, ...]],
        list[str],
        list[tuple[str, _Known | None]],
    ]:
        """Each due schedule's plan (``policy.plan_fire`` through ``plan``): the runs it
        makes, the schedule's new state (``_store_fired`` rows), the runs it replaces, and
        what the cache holds once the fire commits."""
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
        return planned, updates, cancels, after

    def _fired_rows(
        self,
        planned: Sequence[tuple[Schedule, PlannedRun]],
        taken: Mapping[str, int],
        stored_texts: Mapping[str, tuple[str, str]],
        now: datetime,
        node: str | None,
        lease_until: datetime | None,
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[Run]]:
        """The rows to insert for the planned runs (``RUN_COLUMNS``; those ``taken`` by
        the node in ``CLAIMED_RUN_COLUMNS``) and the runs as records."""
        ts = self._ts
        t_now = ts(now)
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
                        s.version,
                        node_defaults_text(s.node_defaults),
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
                        None,
                        None,
                        s.priority,
                        None,
                        False,
                        t_now,
                        float(s.timeout),
                        retry_text,
                        s.version,
                        node_defaults_text(s.node_defaults),
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
                        None,
                        None,
                        s.priority,
                        lease,
                        False,
                        now,
                        s.timeout,
                        s.retry,
                        s.version,
                        s.node_defaults,
                        attempts,
                    )
                )
            )
        return new_rows, claimed_rows, new_runs

    def _store_fired(self, tx: Tx, updates: Sequence[Sequence[Any]]) -> None:
        """Store fired schedules' ``(next_fire_at, last_fire_at, execution_count, status, id)``."""
        self._update_rows(tx, "store_fired", updates)
