"""Pure decisions: which fire times are due, what catch-up and overlap make of them,
how many runs of a schedule may start (its room, the queue head), when a failed
attempt is retried, and how much jitter a fire gets.

Nothing here reads the clock or the database: the engine passes ``now`` and the
stored state in, and the store applies the returned plan in one transaction. Every
node computes the same answer from the same inputs (jitter is derived from ids, not
drawn at random), so it does not matter which node fires a schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from tickwork.models import (
    FirePlan,
    PlannedRun,
    RetryPolicy,
    Run,
    RunTrigger,
    Schedule,
    record_maker,
)

#: At most this many fire times are planned per schedule per transaction; a longer
#: backlog is worked off over several transactions, so none is ever huge.
MAX_FIRES_PER_PLAN: Final = 1000

#: The least misfire grace, in seconds: a fire handled within a second of its time was
#: handled by a node working normally (the look, its transaction, a wake-up from another
#: process take milliseconds), never late, even under ``misfire_grace=0``.
MIN_MISFIRE_GRACE: Final = 1.0

# A fire plans thousands of runs at once: records built without the dataclass __init__.
_run_to_execute = record_maker(PlannedRun, ("id", "scheduled_for", "due_at", "trigger"))
_fire_plan = record_maker(
    FirePlan,
    ("runs", "next_fire_at", "last_fire_at", "execution_count", "status", "cancel_run_ids"),
)


class FireTimes(Protocol):
    """The part of a parsed schedule the policy needs."""

    @property
    def kind(self) -> str: ...

    def next_after(self, dt: datetime) -> datetime | None: ...


def unit_interval(*parts: str) -> float:
    """A number in [0, 1) derived from ``parts``: the same on every node and every run."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fire_jitter(schedule_id: str, fire_time: datetime, jitter: float) -> timedelta:
    """The delay added to a fire: in [0, jitter], fixed by the schedule id and fire time
    (the instant, read in UTC: a fire read from the database and the same fire computed
    in the schedule's zone get the same delay)."""
    if jitter <= 0:
        return timedelta(0)
    instant = fire_time.astimezone(UTC).isoformat()
    return timedelta(seconds=jitter * unit_interval(schedule_id, instant))


def retry_delay(policy: RetryPolicy, failed_attempt: int, seed: str) -> float:
    """Seconds to wait after attempt ``failed_attempt`` (1-based) failed.

    ``delay * backoff**(n-1)`` capped at ``max_delay``; with jitter, "full jitter"
    (a delay drawn uniformly in [0, that]), drawn from ``seed`` so it is reproducible.
    """
    exponent = max(failed_attempt - 1, 0)
    try:
        base = policy.delay * policy.backoff**exponent
    except OverflowError:
        base = policy.max_delay
    base = min(base, policy.max_delay)
    if policy.jitter:
        return base * unit_interval(seed, str(failed_attempt))
    return base


def retry_at(run: Run, policy: RetryPolicy, now: datetime) -> datetime | None:
    """When the run's next attempt is due after attempt ``run.attempt`` failed; None when
    it has used all ``max_attempts``."""
    if run.attempt >= policy.max_attempts:
        return None
    return now + timedelta(seconds=retry_delay(policy, run.attempt, run.id))


def misfire_grace(schedule: Schedule) -> timedelta:
    """How late a fire of ``schedule`` may be handled and still be on time: its
    ``misfire_grace``, at least ``MIN_MISFIRE_GRACE``."""
    return timedelta(seconds=max(schedule.misfire_grace, MIN_MISFIRE_GRACE))


def first_fire(parsed: FireTimes, schedule: Schedule, created_at: datetime) -> datetime | None:
    """The first fire of a new schedule: ``start_at`` is inclusive; otherwise from the
    creation time (intervals anchor there, so they fire at once). A one-time schedule
    whose instant passed less than ``misfire_grace`` ago still fires (see
    ``misfire_grace``).

    A recurring schedule whose ``start_at`` lies further back than ``misfire_grace``
    starts at the first fire within the grace: the fire times before it were not missed
    (the schedule did not exist), and catching them up would record a run for each, one
    per second for a year of an ``every 1s`` schedule. ``start_at`` still anchors its
    intervals; backfill runs past fire times on purpose.
    """
    grace = misfire_grace(schedule)
    start = schedule.start_at or created_at
    if schedule.start_at is None and parsed.kind == "once":
        start -= grace
    elif parsed.kind != "once" and start < created_at - grace:
        start = created_at - grace
    first = parsed.next_after(start - timedelta(microseconds=1))
    return _within_end(first, schedule)


def next_fire(parsed: FireTimes, schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's next fire strictly after ``after``, honouring start_at/end_at and
    max_executions; None when it will never fire again."""
    if schedule.max_executions is not None and schedule.execution_count >= schedule.max_executions:
        return None
    if schedule.start_at is not None and after < schedule.start_at:
        after = schedule.start_at - timedelta(microseconds=1)
    return _within_end(parsed.next_after(after), schedule)


def _within_end(t: datetime | None, schedule: Schedule) -> datetime | None:
    if t is None or (schedule.end_at is not None and t > schedule.end_at):
        return None
    return t


def plan_fire(
    schedule: Schedule,
    parsed: FireTimes,
    active_runs: Sequence[Run],
    now: datetime,
    new_id: Callable[[], str],
) -> FirePlan:
    """Decide what firing a due schedule does.

    Collects the fire times from ``schedule.next_fire_at`` up to ``now`` (at most
    ``MAX_FIRES_PER_PLAN``), applies the catch-up policy to the late ones (late = more
    than ``misfire_grace(schedule)`` behind ``now``) and the overlap policy to each fire in order,
    counting the schedule's unfinished runs and the runs planned before it.
    """
    due: list[datetime] = []
    t = schedule.next_fire_at
    while t is not None and t <= now and len(due) < MAX_FIRES_PER_PLAN:
        due.append(t)
        t = next_fire(parsed, schedule, t)
    more_backlog = t is not None and t <= now

    grace = misfire_grace(schedule)
    # The newest fire of the whole backlog is known only in its last batch.
    newest = due[-1] if due and not more_backlog else None
    max_executions = schedule.max_executions
    executions = schedule.execution_count
    jitter = schedule.jitter
    overlap = schedule.overlap

    active_count = len(active_runs)
    waiting = sum(1 for r in active_runs if r.status in ("pending", "retrying"))
    cancel: list[str] = []
    planned: list[PlannedRun] = []
    late_count = sum(1 for d in due if now - d > grace) if schedule.catchup == "spread" else 0
    if max_executions is not None:  # spread over the late fires that will run, no more
        late_count = min(late_count, max(max_executions - executions, 0))
    spread_index = 0

    for fire in due:
        if max_executions is not None and executions >= max_executions:
            break
        trigger: RunTrigger = "schedule"
        due_at = fire if jitter <= 0 else fire + fire_jitter(schedule.id, fire, jitter)
        if now - fire > grace:
            trigger = "catchup"
            reason = _catchup_refusal(schedule, fire, newest)
            if reason is not None:
                planned.append(
                    PlannedRun(new_id(), fire, fire, trigger, status="missed", error=reason)
                )
                continue
            if late_count > 1:  # catchup == "spread"
                step = schedule.catchup_spread / late_count
                due_at = now + timedelta(seconds=step * spread_index)
                spread_index += 1
        if active_count:
            refusal = _overlap_refusal(schedule, active_count, waiting)
            if refusal is not None:
                planned.append(
                    PlannedRun(new_id(), fire, due_at, trigger, status="skipped", error=refusal)
                )
                continue
        if overlap == "replace":
            # The newest fire wins: everything before it is cancelled.
            cancel = [r.id for r in active_runs]
            planned = [
                dataclasses.replace(p, status="cancelled", error="replaced by a newer fire")
                if p.status == "pending"
                else p
                for p in planned
            ]
            active_count = waiting = 0
        planned.append(_run_to_execute((new_id(), fire, due_at, trigger)))
        executions += 1
        active_count += 1
        waiting += 1

    next_at = t
    if max_executions is not None and executions >= max_executions:
        next_at = None
    return _fire_plan(
        (
            tuple(planned),
            next_at,
            due[-1] if due else schedule.last_fire_at,
            executions,
            "finished" if next_at is None else schedule.status,
            tuple(cancel),
        )
    )


def _catchup_refusal(schedule: Schedule, fire: datetime, newest: datetime | None) -> str | None:
    """Why a late fire is recorded ``missed`` instead of run; None when it runs."""
    policy = schedule.catchup
    if policy in ("all", "spread"):
        return None
    if policy == "latest" and fire == newest:
        return None
    if policy == "latest":
        return "missed: a newer fire time was caught up instead (catchup=latest)"
    return "missed: the fire time passed while no node was running it (catchup=none)"


def _overlap_refusal(schedule: Schedule, active: int, waiting: int) -> str | None:
    """Why a fire is recorded ``skipped`` because earlier runs are not over; None = run."""
    policy = schedule.overlap
    if policy == "skip" and active > 0:
        return "skipped: the previous run is still active (overlap=skip)"
    if policy == "allow" and active >= schedule.max_instances:
        return (
            f"skipped: {active} runs active, max_instances={schedule.max_instances} (overlap=allow)"
        )
    if policy == "buffer_one" and waiting > 0:
        return "skipped: one run is already waiting (overlap=buffer_one)"
    return None


# -- overlap: which waiting runs of a schedule may start --------------------------------
#
# The store applies these two rules in bulk, in SQL, when it claims runs (see
# ``store/claiming.py``); tests/store/test_overlap_rule.py checks that the SQL agrees
# with them on many generated cases.


def running_limit(overlap: str, max_instances: int) -> int | None:
    """How many runs of a schedule may be running at once (None: no limit): ``allow``
    up to ``max_instances``; ``replace`` unlimited (a newer fire cancels the old run
    instead); ``skip``, ``queue`` and ``buffer_one`` one at a time."""
    if overlap == "replace":
        return None
    return int(max_instances) if overlap == "allow" else 1


def room(overlap: str | None, max_instances: int, running: int) -> int | None:
    """How many more runs of a schedule may start while ``running`` of its runs are
    running (None: no limit). ``overlap`` None: a run without a schedule, never limited."""
    if overlap is None:
        return None
    limit = running_limit(overlap, max_instances)
    return None if limit is None else max(0, limit - running)


#: A run's place in its schedule's queue: (scheduled_for, id).
QueueKey = tuple[datetime, str]


def queue_head(unfinished: Iterable[QueueKey]) -> QueueKey | None:
    """The first run of a ``queue`` schedule's queue: its oldest unfinished run."""
    return min(unfinished, default=None)


def is_queue_head(overlap: str | None, run: QueueKey, unfinished: Iterable[QueueKey]) -> bool:
    """Whether a waiting run may start as far as order goes: under ``queue`` only when
    no other unfinished run (pending, running, retrying) of its schedule comes before
    it, so a queue runs in fire order; under the other policies always."""
    if overlap != "queue":
        return True
    head = queue_head(unfinished)
    return head is None or run <= head
