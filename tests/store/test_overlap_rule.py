"""The overlap rule claimed in bulk agrees with the rule written once in ``policy.py``.

``claim_runs`` decides in SQL which waiting runs may start: each schedule's room
(``policy.room``: ``allow`` up to ``max_instances``, ``replace`` unlimited, the others
one at a time) and the queue head (``policy.is_queue_head``: under ``queue`` only the
oldest unfinished run). Hypothesis generates schedules, runs in every state and claim
sizes; the runs claimed must be exactly those the pure functions admit, taken in claim
order (priority, then due time, then id) until the limit, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tickwork.models import Run, Schedule
from tickwork.policy import is_queue_head, room
from tickwork.store import Store

from .conftest import at, make_schedule

NOW = at(10)
FAR = at(10_000)

OVERLAPS = ("allow", "skip", "queue", "buffer_one", "replace")


@dataclass(frozen=True)
class Case:
    schedules: tuple[tuple[str, int], ...]  # (overlap, max_instances)
    runs: tuple[tuple[int | None, str, int, int, int], ...]  # schedule, status, sf, due, prio
    limit: int


cases = st.builds(
    Case,
    schedules=st.lists(
        st.tuples(st.sampled_from(OVERLAPS), st.integers(1, 3)), min_size=1, max_size=3
    ).map(tuple),
    runs=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 2)),
            st.sampled_from(("pending", "retrying", "running", "succeeded")),
            st.integers(0, 8),  # scheduled_for, seconds after T0
            st.integers(0, 12),  # due_at: due when at most 10
            st.integers(0, 1),  # priority
        ),
        min_size=2,
        max_size=14,
    ).map(tuple),
    limit=st.integers(1, 12),
)


def expected_claim(runs: Sequence[Run], schedules: dict[str, Schedule], limit: int) -> list[str]:
    """The runs ``policy`` lets start, in claim order, at most ``limit``."""
    unfinished: dict[str | None, list[tuple[object, str]]] = {}
    for r in runs:
        if r.status in ("pending", "running", "retrying"):
            unfinished.setdefault(r.schedule_id, []).append((r.scheduled_for, r.id))
    running = Counter(r.schedule_id for r in runs if r.status == "running")
    waiting = [
        r
        for r in runs
        if r.status in ("pending", "retrying") and r.due_at is not None and r.due_at <= NOW
    ]
    waiting.sort(key=lambda r: (-r.priority, r.due_at, r.id))
    taken: list[str] = []
    for r in waiting:
        if len(taken) >= limit:
            break
        s = schedules.get(r.schedule_id or "")
        overlap = s.overlap if s is not None else None
        key = (r.scheduled_for, r.id)
        if not is_queue_head(overlap, key, unfinished[r.schedule_id]):  # type: ignore[arg-type]
            continue
        left = room(overlap, s.max_instances if s is not None else 1, running[r.schedule_id])
        if left == 0:
            continue
        running[r.schedule_id] += 1
        taken.append(r.id)
    return taken


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases)
# The queue head is the oldest run, not the best placed in claim order.
@example(Case((("queue", 1),), ((0, "pending", 0, 0, 0), (0, "pending", 1, 0, 2)), 5))
# A full schedule's runs fill the first look: the ranked look finds the others.
@example(
    Case(
        (("skip", 1), ("allow", 2)),
        (
            (0, "running", 0, 0, 0),
            (0, "pending", 1, 0, 2),
            (0, "pending", 2, 0, 2),
            (1, "pending", 3, 1, 0),
            (1, "pending", 4, 1, 0),
            (1, "pending", 5, 1, 0),
        ),
        2,
    )
)
def test_claimed_runs_are_those_the_overlap_rule_admits(store: Store, case: Case) -> None:
    # A task of its own per example: earlier examples' runs are never candidates.
    task = "t" + uuid.uuid4().hex[:12]
    schedules: dict[str, Schedule] = {}
    for i, (overlap, max_instances) in enumerate(case.schedules):
        s = make_schedule(
            f"{task}-{i}",
            task=task,
            overlap=overlap,
            max_instances=max_instances,
            next_fire_at=FAR,  # never fires here: only the runs below exist
        )
        schedules[s.id] = store.add_schedule(s)
    runs: list[Run] = []
    for index, status, sf, due, priority in case.runs:
        sid = f"{task}-{index}" if index is not None and index < len(case.schedules) else None
        running = status == "running"
        runs.append(
            Run(
                id=uuid.uuid4().hex,
                schedule_id=sid,
                task=task,
                scheduled_for=at(sf),
                trigger="schedule" if sid else "manual",
                status=status,  # type: ignore[arg-type]
                attempt=1 if running or status == "succeeded" else 0,
                due_at=at(due),
                priority=priority,
                node="elsewhere" if running else None,
                lease_until=FAR if running else None,
                started_at=at(sf) if running or status == "succeeded" else None,
                finished_at=at(sf) + timedelta(seconds=1) if status == "succeeded" else None,
                created_at=at(sf),
            )
        )
    # (schedule_id, scheduled_for) is unique: a colliding run is dropped by the store.
    stored = store.insert_runs(runs)
    want = expected_claim(stored, schedules, case.limit)
    got = store.claim_runs("n1", NOW, NOW + timedelta(seconds=30), case.limit, [task], {})
    assert [r.id for r in got] == want
