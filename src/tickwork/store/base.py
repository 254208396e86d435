"""The store interface: everything tickwork keeps, and the transitions it must make atomic.

The database is the source of truth. Every method below is one transaction unless it
says otherwise; a process may die between any two calls and the database stays
consistent. Methods are synchronous: SQLite's and psycopg's drivers are, and the
engine calls them from worker threads. Implementations translate driver exceptions
into ``StoreError``/``StoreUnavailableError`` and never read the clock: every instant
comes in as an argument (``now``), aware, and is stored in UTC.

Guarantees an implementation must keep, whatever the number of processes sharing it:

- one run per (schedule_id, scheduled_for) for runs triggered by the schedule, catch-up
  or backfill: a unique key, inserts that conflict are silently dropped;
- the runs created for a fire and the schedule's advance commit together;
- a run is ``running`` and leased to a node before that node executes it;
- a finished run, its attempt, its logs and its queue message commit together, and
  only if the reporting node still holds the attempt (a run declared ``lost`` and
  taken over cannot be overwritten by the node that lost it).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime

from tickwork.models import (
    AuditEntry,
    FeedEvent,
    LogRecord,
    QueueMessage,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    TaskStats,
)
from tickwork.store.base_access import AccessStore
from tickwork.store.base_nodes import NodeStore
from tickwork.store.base_reads import ReadStore
from tickwork.store.records import (
    ALL_SCHEDULES,
    ClaimRequest,
    EventWatch,
    FinishItem,
    FirePlanner,
    FireResult,
    Gauges,
    Heartbeat,
    NextFire,
    RetryPlanner,
    ScheduleFilter,
)

__all__ = [
    "ClaimRequest",
    "EventWatch",
    "FinishItem",
    "FirePlanner",
    "FireResult",
    "Gauges",
    "Heartbeat",
    "NextFire",
    "RetryPlanner",
    "Store",
]


class Store(ReadStore, AccessStore, NodeStore):
    """Persistence of schedules, runs, attempts, logs, queues and nodes."""

    url: str
    """The database URL with any password masked; safe to print."""

    migrated_on_open: tuple[int, ...] = ()
    """The migrations ``open`` applied (empty when the schema was up to date), so that
    an explicit upgrade right after opening can say what was done."""

    # -- lifecycle -------------------------------------------------------------------

    @abstractmethod
    def open(self) -> None:
        """Connect and apply pending migrations (under a lock, so concurrent starts are safe).

        Raises ``StoreUnavailableError`` with the reason when the database cannot be reached.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abstractmethod
    def upgrade(self) -> list[int]:
        """Apply pending migrations; return the versions applied (empty when up to date)."""

    # -- schedules -------------------------------------------------------------------

    @abstractmethod
    def add_schedule(self, schedule: Schedule, audit: AuditEntry | None = None) -> Schedule:
        """Insert a new schedule as given (the caller computed ``next_fire_at``, timestamps),
        with ``audit`` (its ``after`` as given) in the same transaction.

        Raises ``ConflictError`` when the id exists.
        """

    def try_add_schedule(
        self, schedule: Schedule, audit: AuditEntry | None = None
    ) -> Schedule | None:
        """``add_schedule`` on the calling thread, only if it can commit without waiting
        on another thread's or process's lock; None when it cannot (nothing written):
        then call ``add_schedule`` on a store thread.

        An optional capability for the event loop, whose thread must never block: a
        store that cannot tell in advance (the default) always answers None.
        """
        return None

    @abstractmethod
    def update_schedule(
        self,
        schedule: Schedule,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> Schedule:
        """Replace every stored field of the schedule with the given id, and return it as stored.

        ``version`` goes up by one. With ``expected_version``, a stored version that
        differs raises ``PreconditionFailedError`` and nothing changes (checked under the
        row's lock). ``audit`` is written in the same transaction, its ``after`` being
        the schedule as stored.

        The caller recomputed ``next_fire_at``/``status`` and set ``updated_at``. Runs
        already created are untouched. ``created_at``, ``last_fire_at`` and
        ``execution_count`` keep their stored values: the fire loop maintains them, and
        the caller's copy may predate a fire that committed meanwhile. Raises
        ``NotFoundError`` when the id is unknown.
        """

    @abstractmethod
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        """The schedule, or None."""

    @abstractmethod
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
        """Schedules matching every given filter, ordered by id; ``after_id`` pages;
        ``q``: a case-insensitive substring of the id, name, description or task."""

    # -- the dashboard's summaries (SQL in store/sql_dashboard.py) -------------------

    @abstractmethod
    def schedule_page(
        self,
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Schedule], int]:
        """One page of the schedules ``filters`` match, ordered by ``sort`` (``name``,
        ``next``, ``task``, ``created``, ``status``; ties by id), and how many match in
        all. The page is ``offset`` and ``limit``; ``filters.limit`` plays no part."""

    @abstractmethod
    def schedule_ids(self, filters: ScheduleFilter = ALL_SCHEDULES) -> list[str]:
        """The ids of every schedule the filters match, in id order."""

    def active_runs(self, now: datetime) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Runs ``pending``, ``running`` and ``retrying`` (and ``backlog``: those waiting
        and due by ``now``), and the running runs' ids by node: what ``status`` shows,
        read from the indexes of unfinished runs, however many finished runs are kept."""
        counts = self.count_runs(now)
        running: dict[str, list[str]] = {}
        for run in self.list_runs(status="running", limit=100_000):
            running.setdefault(run.node or "", []).append(run.id)
        keep = ("pending", "running", "retrying", "backlog")
        return {k: counts.get(k, 0) for k in keep}, running

    def upcoming_schedules(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Schedule]:
        """Active schedules in order of ``(next_fire_at, id)``, the first ``limit``
        after ``after``: read from the index of next fire times, whatever the number of
        schedules."""
        active = [
            s
            for s in self.list_schedules(status="active")
            if s.next_fire_at is not None and (after is None or (s.next_fire_at, s.id) > after)
        ]
        active.sort(key=lambda s: (s.next_fire_at, s.id))
        return active[:limit]

    @abstractmethod
    def count_schedules(self, owner: str | None = None) -> dict[str, int]:
        """Schedules per status (every status present, 0 when none)."""

    @abstractmethod
    def run_activity(
        self, since: datetime, bucket_seconds: int, owner: str | None = None
    ) -> list[tuple[int, str, int, float | None, float | None]]:
        """Runs scheduled at or after ``since`` (of ``owner``'s schedules if given) per
        bucket of ``bucket_seconds`` and status: ``(bucket, status, count, mean
        duration, longest duration)``, durations in seconds."""

    @abstractmethod
    def recent_runs(
        self, schedule_ids: Sequence[str], per_schedule: int, owner: str | None = None
    ) -> dict[str, list[tuple[str, str, datetime]]]:
        """The newest ``per_schedule`` runs of each schedule as ``(id, status,
        scheduled_for)``, oldest first; with ``owner``, another user's schedule has none."""

    @abstractmethod
    def delete_schedule(
        self,
        schedule_id: str,
        now: datetime,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> list[Run] | None:
        """Delete the schedule; its pending/retrying runs become ``cancelled`` in the same
        transaction, its running runs are asked to cancel, its history stays.
        Returns the runs it cancelled (for the process's event subscribers); None when
        it did not exist. ``expected_version`` and ``audit`` (its ``before``
        the deleted schedule) as for ``update_schedule``."""

    @abstractmethod
    def set_paused(
        self,
        schedule_ids: Sequence[str] | None,
        paused: bool,
        now: datetime,
        next_fire: NextFire,
        audit: AuditEntry | None = None,
        expected_version: int | None = None,
    ) -> list[Schedule]:
        """Pause or resume the given schedules (None: all). Returns those that changed.

        ``expected_version`` (with one schedule id): the ``version`` the caller read;
        a schedule found at another one raises ``PreconditionFailedError`` and nothing
        changes, checked in the same transaction (as ``update_schedule`` does).

        Each changed schedule's ``version`` goes up by one and, with ``audit``, gets
        an audit entry of its own (target, before and after filled in) in the same
        transaction.

        Pausing records ``paused_at`` and sets status ``paused``; resuming sets status
        ``active`` and ``next_fire_at = next_fire(schedule, now)`` so time spent paused
        is not caught up (a finished schedule stays finished).
        """

    # -- firing ----------------------------------------------------------------------

    @abstractmethod
    def next_wakeup(self) -> datetime | None:
        """The earliest instant at which there is something to do: the smallest
        ``next_fire_at`` of active schedules or ``due_at`` of pending/retrying runs.
        Must use indexes: never a scan of all schedules."""

    @abstractmethod
    def fire_due(
        self,
        now: datetime,
        plan: FirePlanner,
        limit: int,
        *,
        ended: Collection[str] = frozenset(),
    ) -> list[Run]:
        """Fire up to ``limit`` active schedules whose ``next_fire_at <= now``, earliest first.

        In one transaction: lock the due schedules (skipping ones another node holds),
        call ``plan`` for each with its unfinished runs, insert the planned runs (a
        conflict on (schedule_id, scheduled_for) drops the insert), cancel
        ``plan.cancel_run_ids`` (pending/retrying ones end ``cancelled`` at once,
        running ones get ``cancel_requested``), and store the schedule's new
        ``next_fire_at``/``last_fire_at``/``execution_count``/``status``. Returns the
        runs inserted, in all statuses (skipped and missed ones included).

        ``ended``: runs the firing node has ended for good (no retry follows) whose end
        it has not written yet (ends are written in batches, and a slow or locked
        database delays them). They do not count as unfinished for this fire: not for
        the overlap policy, not for the runs the fire claims. The database still shows
        them ``running`` until their end is written, so other nodes, and ``claim_runs``,
        count them as before.
        """

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
        """``fire_due`` (``ended`` as there) and, in the same transaction where the store
        can, claim for ``claim.node_id`` the runs just created that are due, as ``claim_runs``
        would (same limits, priority order, ``claim.limit`` at most): a run due at
        once is written ``running`` directly instead of ``pending`` first, saving a
        transaction and a rewrite per run. Runs the node cannot or may not take stay
        ``pending`` for ``claim_runs`` (on any node). By default: the two calls, one
        after the other.

        ``hold``: a fire prepared ahead of ``now`` (an instant still to come). The store
        does the work, then calls ``hold``, which returns once ``now`` has come: True
        commits, False (the node is stopping) rolls everything back and returns an empty
        result. Nothing is visible, and no task may start, before the commit."""
        if hold is not None and not hold():
            return FireResult([], [])
        fired = self.fire_due(now, plan, limit, ended=ended)
        claimed = self.claim_runs(
            claim.node_id, now, claim.lease_until, claim.limit, claim.tasks, claim.task_limits
        )
        return FireResult(fired, claimed, more=len(claimed) >= claim.limit)

    def count_due(self, at: datetime, limit: int) -> int:
        """How many active schedules are due at ``at`` (counting stops at ``limit``);
        0 when the store cannot tell cheaply."""
        return 0

    def read_ahead(self, until: datetime, limit: int) -> int:
        """Prepare the fire of the active schedules due by ``until`` (at most ``limit``):
        a store that keeps decoded schedules reads them now, so that the fire, often a
        burst, only checks that they are unchanged. Returns how many it read; by
        default nothing is kept and nothing read."""
        return 0

    @abstractmethod
    def insert_runs(self, runs: Sequence[Run], audit: AuditEntry | None = None) -> list[Run]:
        """Insert runs made outside the fire loop (manual triggers, backfill); returns
        those inserted. Backfill runs that collide with an existing (schedule_id,
        scheduled_for) are dropped; manual runs never collide. ``audit`` is written in
        the same transaction, with the ids inserted added to its ``after`` as ``runs``."""

    @abstractmethod
    def insert_run_once(
        self,
        schedule: Schedule,
        run: Run,
        key: tuple[str, str],
        window_start: datetime,
        audit: AuditEntry | None = None,
    ) -> tuple[Run, bool]:
        """A manual run asked for with an idempotency ``key`` (scope, key): when the key
        was stored at or after ``window_start`` the run made then is returned (False),
        else ``run`` is inserted with the key (True), in one transaction. A key used
        for another schedule raises ``ConflictError``. Unique on (scope, key), so two
        concurrent requests make one run (the loser's transaction fails and may retry)."""

    @abstractmethod
    def claim_runs(
        self,
        node_id: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        tasks: Collection[str],
        task_limits: Mapping[str, int],
    ) -> list[Run]:
        """Claim up to ``limit`` pending/retrying runs with ``due_at <= now`` for ``node_id``.

        Order: priority descending, then ``due_at``, then id. Only runs of ``tasks``
        (the tasks this node can execute). Limits, counted over all nodes: a
        schedule's running runs stay below ``max_instances`` when its overlap is
        ``allow``, below 1 for ``skip``/``queue``/``buffer_one`` (so a queue runs in
        order), unlimited for ``replace``; a task's running runs stay below
        ``task_limits[task]`` when given. Claiming sets status ``running``, increments
        ``attempt``, sets ``node``, ``lease_until``, ``started_at`` (first attempt
        only), and adds a ``running`` attempt, all committed before returning.
        """

    @abstractmethod
    def heartbeat(
        self,
        node_id: str,
        now: datetime,
        lease_until: datetime,
        run_ids: Collection[str],
        stuck_threads: int = 0,
        stuck_coroutines: int = 0,
    ) -> Heartbeat:
        """Renew the node's heartbeat (clearing ``stopped_at`` if it was taken for dead)
        and the leases of ``run_ids`` it still holds, and record how many of its threads
        and coroutines are stuck in tasks it gave up on (``Node.stuck_threads``,
        ``Node.stuck_coroutines``), in the same statement."""

    @abstractmethod
    def finish_attempts(
        self,
        items: Sequence[FinishItem],
        now: datetime,
        *,
        attempts: bool = True,
        brief: bool = False,
    ) -> list[Run | None]:
        """Record how attempts ended, with their logs, in one transaction: one commit
        for a burst of endings instead of one each. Results are in the order of ``items``;
        with ``attempts=False`` their ``attempts`` are left empty instead of read (the
        engine reads only the runs' own fields). With ``brief=True`` a result carries
        only the run's ``id``, ``schedule_id``, ``task``, ``scheduled_for``, ``node`` and
        what the end wrote (``status``, ``attempt``, ``due_at``, ``started_at``,
        ``finished_at``, ``error``, ``traceback``); its other fields are at their
        defaults (``result`` None, no attempts nor logs): what the engine's finisher
        reads, for less work than decoding the whole run.

        An end is written only if its run is still ``running`` with that attempt on
        that node; otherwise nothing is written for it and its result is None (a run
        named twice counts once, the first). With ``outcome.retry_at`` the run becomes
        ``retrying`` and due then; without, it ends in ``outcome.status`` with
        ``finished_at`` = ``outcome.finished_at`` or ``now``. A success puts
        ``{"run_id", "schedule_id", "task", "scheduled_for", "result"}`` on the
        schedule's ``result_queue``; a final failure/timeout puts the same with
        ``error`` on its ``error_queue``.
        """

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
        """``finish_attempts`` then ``claim_runs`` (its arguments after ``now``): the slots
        a batch of ends frees, refilled in the same trip, in one transaction where the
        store can (one commit instead of two). Raises as ``finish_attempts``: nothing
        written. By default: the two calls, one after the other."""
        written = self.finish_attempts(items, now, attempts=attempts, brief=brief)
        return written, self.claim_runs(node_id, now, lease_until, limit, tasks, task_limits)

    @abstractmethod
    def recover_lost(
        self, now: datetime, dead_nodes: Collection[str], retry: RetryPlanner
    ) -> list[Run]:
        """Take over runs whose node died: ``running`` runs with ``lease_until < now``
        or whose node is in ``dead_nodes``. Their current attempt is recorded
        ``lost``; the run becomes ``retrying`` at ``retry(...)``, or ``lost`` when it
        returns None (``cancelled`` if a cancel was requested). The ``dead_nodes`` are
        marked stopped (``stopped_at = now``; a node that heartbeats again is back).
        Returns the runs changed, as they are after the change."""

    @abstractmethod
    def cancel_run(self, run_id: str, now: datetime, audit: AuditEntry | None = None) -> Run:
        """Cancel a run: pending/retrying ones end ``cancelled`` at once; running ones
        get ``cancel_requested`` (their node cancels them). A running run asked before
        is returned as it is, with nothing written (no audit entry). Raises
        ``NotFoundError``, or ``ConflictError`` when the run is already over."""

    @abstractmethod
    def get_run(self, run_id: str, owner: str | None = None) -> Run | None:
        """The run with its attempts and logs, or None; with ``owner``, None too when
        the run is not that user's (as ``list_runs`` scopes them)."""

    @abstractmethod
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
        """Runs matching the filters, newest ``scheduled_for`` first, with attempts but
        without logs (``get_run`` has them). ``since``/``until`` bound scheduled_for.
        ``owner``: only that user's runs: those of their schedules, deleted ones
        included (a run is the user's whose its schedule was when the run was made, so
        an id deleted and taken again by another user splits its history between
        them). ``before`` (scheduled_for, id):
        the runs after that position in this order (a cursor that stays valid when
        the run it names is deleted)."""

    @abstractmethod
    def count_runs(self, now: datetime, owner: str | None = None) -> dict[str, int]:
        """Number of runs per status, plus ``backlog``: pending/retrying runs due by now.
        ``owner``: only runs of that user's schedules."""

    @abstractmethod
    def task_stats(
        self, since: datetime | None = None, owner: str | None = None
    ) -> list[TaskStats]:
        """Per task, over runs scheduled since ``since`` (of ``owner``'s schedules when
        given): counts and duration percentiles."""

    def run_stats(
        self, now: datetime, since: datetime | None = None, owner: str | None = None
    ) -> tuple[list[TaskStats], dict[str, int]]:
        """``task_stats(since, owner)`` and ``count_runs(now, owner)`` together (what
        ``tickwork stats`` shows), so that a store may count the runs once for both."""
        return self.task_stats(since, owner), self.count_runs(now, owner)

    # -- queues ----------------------------------------------------------------------

    @abstractmethod
    def read_queue(
        self,
        name: str,
        *,
        consume: bool = True,
        limit: int = 100,
        owner: str | None = None,
        after: int = 0,
    ) -> list[QueueMessage]:
        """Oldest messages first; with ``consume`` they are deleted in the same
        transaction, so two consumers never get the same message. ``owner``: only
        messages written while their schedule was that user's (a deleted one's
        included: ``owned_runs``); ``after``: only messages with a greater id
        (where the previous page ended)."""

    # -- a running attempt's log lines (SQL in store/sql_run_lines.py) ---------------

    @abstractmethod
    def write_live_logs(
        self, lines: Sequence[tuple[str, LogRecord]], ended: Collection[tuple[str, int]] = ()
    ) -> set[tuple[str, int]]:
        """Store log lines (run id, record) of attempts still running, so ``get_run``
        shows them before the attempt ends, and delete those of the ``ended`` attempts
        (run id, attempt) whose final logs ``finish_attempts`` stored; one transaction.
        ``get_run`` shows an attempt's live lines only while it has no final ones (so a
        lost attempt keeps its partial lines). Returns the ``ended`` attempts no longer
        running in the database (their end written, or taken over)."""

    # -- maintenance -----------------------------------------------------------------

    @abstractmethod
    def delete_runs_before(self, cutoff: datetime) -> int:
        """Delete finished runs (and their attempts, logs) that finished before ``cutoff``,
        and audit entries and idempotency keys older than it."""

    # -- monitoring ------------------------------------------------------------------

    @abstractmethod
    def gauges(self, now: datetime, alive_since: datetime) -> Gauges:
        """What a metrics scrape shows of the database now, from indexes where they
        exist: schedules per status, waiting and running runs, the age of the oldest
        waiting run that is due, the age of the oldest fire time of an active schedule
        not fired yet, and the nodes alive (not stopped, heartbeat renewed within the
        node's own ``lease_ttl``, or since ``alive_since`` for a node registered
        without one)."""

    @abstractmethod
    def overdue_fires(self, before: datetime) -> tuple[int, datetime | None]:
        """Active schedules whose next fire time is at or before ``before`` (not fired
        by then), and the oldest such fire time: what ``tickwork status`` says is
        overdue. From the index of active schedules' next fires."""

    # -- the event feed --------------------------------------------------------------

    @abstractmethod
    def read_events(self, after: int, limit: int = 500) -> list[FeedEvent]:
        """Events of the feed with an id above ``after``, oldest first, at most ``limit``
        (a transaction's events are never split from their order, only cut by the limit).

        The feed is written by the database itself (triggers), in the transaction of
        the change, for every schedule created, updated, paused, resumed, finished or
        deleted and every run inserted or changing status or attempt; ids increase in
        commit order, so a reader that remembers the last id it saw misses nothing.
        """

    @abstractmethod
    def last_event_id(self) -> int:
        """The id of the newest event (0 when there is none)."""

    @abstractmethod
    def watch_events(self) -> EventWatch:
        """A watch that wakes when another connection may have added events; for one
        thread (the follower's)."""

    @abstractmethod
    def delete_events_before(self, cutoff: datetime) -> int:
        """Delete events recorded before ``cutoff``; ids never go back (SQLite, whose
        ids come from the table, keeps the newest row)."""

    # -- change notification ---------------------------------------------------------

    @abstractmethod
    def notify_change(self) -> None:
        """Tell other processes that schedules or runs changed (PostgreSQL: NOTIFY)."""

    @abstractmethod
    def wait_for_change(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until another process commits a change;
        True if one was seen. Called from a dedicated thread."""

    @abstractmethod
    def interrupt_wait(self) -> None:
        """Make a blocked ``wait_for_change`` return soon (shutdown)."""
