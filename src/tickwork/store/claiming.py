"""Claiming: which waiting runs a node takes, best first, within every limit
(the schedule's room and queue head from ``policy``, the node's task limits), and
which runs a fire hands its node at once."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from tickwork.models import (
    ACTIVE_RUN_STATUSES,
    Attempt,
    PlannedRun,
    Run,
    Schedule,
    record_maker,
)
from tickwork.policy import QueueKey, is_queue_head, queue_head, room, running_limit
from tickwork.store.base import ClaimRequest, FinishItem
from tickwork.store.codec import _R, RunAt, _aware
from tickwork.store.dialect import SqlCore, Tx

#: What ``Claiming._claim_in`` found: the claimed runs' rows, the earlier attempts of
#: those retried (by run id), each run's rank in claim order (by run id).
_Claimed = tuple[list[Sequence[Any]], dict[str, tuple[Attempt, ...]], dict[str, int]]
#: The result columns of ``claim_candidates`` and ``claim_candidates_ranked``.
_CANDIDATE: Final = "id, schedule_id, task, overlap, max_instances"
#: ``Attempt`` from all its fields in order, built as fast as a claim needs.
_attempt = record_maker(
    Attempt, ("number", "status", "started_at", "finished_at", "node", "error", "traceback")
)


class Claiming(SqlCore):
    """Claims, as ``claim_runs`` makes them and as a fire makes them for its node."""

    if TYPE_CHECKING:  # written by AttemptEnds, another mixin of SqlStore

        def _finish_batch(
            self,
            tx: Tx,
            items: Sequence[FinishItem],
            now: datetime,
            attempts: bool = True,
            brief: bool = False,
        ) -> list[Run | None]: ...

    #: Whether ``mark_claimed`` returns the claimed runs (PostgreSQL: ``RETURNING``);
    #: else they are read after it, in one step (SQLite, where ``RETURNING`` is a step
    #: per row).
    _returns_claimed: bool = True

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
        with self._write() as tx:
            claimed = self._claim_in(tx, node_id, now, lease_until, limit, tasks, task_limits)
        return self._claimed(claimed, node_id, now)  # decoded after the commit

    def finish_and_claim(
        self,
        items: Sequence[FinishItem],
        now: datetime,
        node_id: str,
        lease_until: datetime,
        limit: int,
        tasks: Collection[str],
        task_limits: Mapping[str, int],
        *,
        attempts: bool = True,
        brief: bool = False,
    ) -> tuple[list[Run | None], list[Run]]:
        """In one transaction: a commit (and a write of the pages both change) less than
        ``finish_attempts`` and ``claim_runs`` one after the other."""
        now = _aware(now)
        claimed: _Claimed = ([], {}, {})
        with self._write() as tx:
            written = self._finish_batch(tx, items, now, attempts, brief)
            if limit > 0 and tasks:
                claimed = self._claim_in(tx, node_id, now, lease_until, limit, tasks, task_limits)
        return written, self._claimed(claimed, node_id, now)

    def _claim_in(
        self,
        tx: Tx,
        node_id: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        tasks: Collection[str],
        task_limits: Mapping[str, int],
    ) -> _Claimed:
        """``claim_runs`` in the transaction ``tx``: the rows of the runs it claimed, the
        earlier attempts of those retried, and each run's rank in claim order."""
        t_now = self._ts(_aware(now))
        claimable = set(tasks)
        full = self._full_tasks(tx, claimable, task_limits)
        claimable -= full
        claimed: list[tuple[str, int]] = []  # (run id, rank) in claim order
        rows: list[Sequence[Any]] = []
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
            return [], {}, {}
        retried = [row[RunAt.id] for row in rows if row[RunAt.attempt] > 1]
        return rows, self._attempts_of(tx, retried), dict(claimed)

    def _claimed(self, claimed: _Claimed, node_id: str, now: datetime) -> list[Run]:
        """The runs ``_claim_in`` claimed, in claim order, each with its new attempt."""
        rows, earlier, order = claimed
        started = _aware(now)
        # The runs' new attempts differ only by their number: one (frozen) record per
        # number, shared, instead of one per run.
        only: dict[int, tuple[Attempt]] = {}
        runs = []
        run = self._run
        for row in sorted(rows, key=lambda r: order[r[RunAt.id]]):
            number = row[RunAt.attempt]
            current = only.get(number)
            if current is None:
                current = only[number] = (
                    _attempt((number, "running", started, None, node_id, None, None)),
                )
            if row[RunAt.id] in earlier:
                previous = tuple(a for a in earlier[row[RunAt.id]] if a.number != number)
                runs.append(run(row, (*previous, *current)))
            else:
                runs.append(run(row, current))
        return runs

    def _full_tasks(self, tx: Tx, tasks: set[str], task_limits: Mapping[str, int]) -> set[str]:
        limited = [t for t in tasks if t in task_limits]
        if not limited:
            return set()
        counts = self._running_per(tx, "task", limited)
        return {t for t in limited if counts.get(t, 0) >= task_limits[t]}

    def _claim_candidates(
        self, tx: Tx, t_now: Any, tasks: set[str], want: int, ranked: bool
    ) -> list[Sequence[Any]]:
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
        task_list = self._list(sorted(tasks))
        if not ranked:
            return list(
                self._rows(tx, self._sql("claim_candidates"), (t_now, task_list, want), _CANDIDATE)
            )
        params: tuple[Any, ...] = (t_now, task_list, want)
        if self._claim_checks_again:  # the rows locked, then checked again
            params = (*params, t_now)
        return list(self._rows(tx, self._sql("claim_candidates_ranked"), params, _CANDIDATE))

    def _admit(
        self, tx: Tx, candidates: list[Sequence[Any]], task_limits: Mapping[str, int]
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
    ) -> list[Sequence[Any]]:
        id_list = self._list(ids)
        t_now = self._ts(_aware(now))
        rows: Sequence[Sequence[Any]] = tx.execute(
            self._sql("mark_claimed"), (node_id, self._ts(_aware(lease_until)), t_now, id_list)
        )
        if not self._returns_claimed:  # read in one step (see ``SqlCore._rows``)
            rows = self._rows(tx, self._sql("claimed_runs"), (id_list,), _R)
        tx.execute(self._sql("start_claimed_attempts"), (t_now, node_id, id_list))
        return list(rows)

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
        if tx.execute(
            self._sql("waiting_due_for_tasks"), (self._ts(now), self._list(sorted(set(tasks))))
        ):
            return {}, True  # older runs first: claim_runs ranks them with these
        candidates.sort(key=lambda c: (-c[0].priority, c[1].due_at, c[1].id))
        places = claim.limit
        # Per task shared with live peers: how many of its runs this node takes.
        caps: dict[str, int] = {}
        if claim.shares:
            for task, count in Counter(s.task for s, _ in candidates).items():
                share = claim.shares.get(task, 1.0)
                if share < 1:
                    caps[task] = max(1, math.ceil(count * share))
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
            if caps.get(s.task) == 0:  # the rest of this task is left to peers
                left_behind = True
                continue
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
            if s.task in caps:
                caps[s.task] -= 1
            taken[p.id] = len(taken)
        return taken, left_behind
