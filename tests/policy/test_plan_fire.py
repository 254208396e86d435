"""plan_fire: catch-up, overlap, misfire grace, max_executions, end_at, jitter."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickwork.models import RetryPolicy, Run, Schedule
from tickwork.policy import (
    MAX_FIRES_PER_PLAN,
    fire_jitter,
    first_fire,
    next_fire,
    plan_fire,
    retry_at,
    retry_delay,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Every:
    """Fires every ``seconds`` from T0: the smallest schedule with known fire times."""

    kind = "interval"

    def __init__(self, seconds: float, anchor: datetime = T0) -> None:
        self.step = timedelta(seconds=seconds)
        self.anchor = anchor

    def next_after(self, dt: datetime) -> datetime | None:
        if dt < self.anchor:
            return self.anchor
        k = int((dt - self.anchor) / self.step) + 1
        return self.anchor + k * self.step


class Once:
    kind = "once"

    def __init__(self, at: datetime) -> None:
        self.at = at

    def next_after(self, dt: datetime) -> datetime | None:
        return self.at if dt < self.at else None


def ids() -> itertools.count[int]:
    return itertools.count(1)


def make_id() -> object:
    counter = ids()
    return lambda: f"r{next(counter)}"


def sched(**kw: object) -> Schedule:
    base = dict(id="s1", task="t", schedule="every 60s", next_fire_at=T0, anchor=T0)
    base.update(kw)
    return Schedule(**base)  # type: ignore[arg-type]


def running(run_id: str = "old", status: str = "running") -> Run:
    return Run(id=run_id, schedule_id="s1", task="t", scheduled_for=T0, status=status)  # type: ignore[arg-type]


def plan(s: Schedule, now: datetime, active: list[Run] | None = None, every: float = 60):
    return plan_fire(s, Every(every), active or [], now, make_id())  # type: ignore[arg-type]


class TestOnTime:
    def test_one_due_fire_creates_one_pending_run_and_advances(self) -> None:
        p = plan(sched(), T0 + timedelta(seconds=1))
        assert [(r.scheduled_for, r.status, r.trigger) for r in p.runs] == [
            (T0, "pending", "schedule")
        ]
        assert p.next_fire_at == T0 + timedelta(minutes=1)
        assert p.last_fire_at == T0
        assert p.execution_count == 1
        assert p.status == "active"

    def test_within_misfire_grace_is_on_time(self) -> None:
        p = plan(sched(misfire_grace=30), T0 + timedelta(seconds=30))
        assert [(r.status, r.trigger) for r in p.runs] == [("pending", "schedule")]

    @pytest.mark.parametrize("late", [0.001, 0.999, 1.0])
    def test_a_grace_of_zero_still_counts_a_fire_handled_within_a_second(self, late: float) -> None:
        p = plan(sched(misfire_grace=0, catchup="none"), T0 + timedelta(seconds=late))
        assert [(r.status, r.trigger) for r in p.runs] == [("pending", "schedule")]

    def test_a_grace_of_zero_makes_a_fire_handled_later_than_a_second_late(self) -> None:
        p = plan(sched(misfire_grace=0, catchup="none"), T0 + timedelta(seconds=1.001))
        assert [(r.status, r.trigger) for r in p.runs] == [("missed", "catchup")]

    def test_nothing_due_yet_plans_nothing(self) -> None:
        p = plan(sched(), T0 - timedelta(seconds=1))
        assert p.runs == ()
        assert p.next_fire_at == T0


class TestCatchup:
    now = T0 + timedelta(minutes=10, seconds=5)  # fires T0..T0+10m are due: 11 of them

    def test_latest_runs_only_the_newest_late_fire(self) -> None:
        p = plan(sched(catchup="latest", misfire_grace=1), self.now)
        statuses = [r.status for r in p.runs]
        assert statuses == ["missed"] * 10 + ["pending"]
        assert p.runs[-1].scheduled_for == T0 + timedelta(minutes=10)
        assert p.runs[-1].trigger == "catchup"
        assert p.next_fire_at == T0 + timedelta(minutes=11)

    def test_latest_with_an_on_time_fire_misses_all_late_ones(self) -> None:
        p = plan(sched(catchup="latest", misfire_grace=30), self.now)
        assert [r.status for r in p.runs] == ["missed"] * 10 + ["pending"]
        assert p.runs[-1].trigger == "schedule"

    def test_none_records_every_late_fire_missed(self) -> None:
        p = plan(sched(catchup="none", misfire_grace=1), self.now)
        assert [r.status for r in p.runs] == ["missed"] * 11
        assert all("catchup=none" in (r.error or "") for r in p.runs)
        assert p.execution_count == 0

    def test_all_runs_each_late_fire_in_order(self) -> None:
        p = plan(sched(catchup="all", overlap="queue", misfire_grace=1), self.now)
        assert [r.status for r in p.runs] == ["pending"] * 11
        assert [r.scheduled_for for r in p.runs] == [T0 + timedelta(minutes=i) for i in range(11)]
        assert p.execution_count == 11

    def test_all_is_still_subject_to_overlap_skip(self) -> None:
        p = plan(sched(catchup="all", overlap="skip", misfire_grace=1), self.now)
        assert [r.status for r in p.runs] == ["pending"] + ["skipped"] * 10

    def test_spread_spaces_late_runs_evenly_over_the_window(self) -> None:
        s = sched(catchup="spread", catchup_spread=100, overlap="allow", max_instances=100)
        p = plan(s.replace(misfire_grace=1), self.now)
        assert [r.status for r in p.runs] == ["pending"] * 11
        offsets = [(r.due_at - self.now).total_seconds() for r in p.runs]
        assert offsets == pytest.approx([100 / 11 * i for i in range(11)])

    def test_spread_spaces_only_the_fires_max_executions_leaves(self) -> None:
        """The window was divided among all 11 late fires, so the 3 that could still run
        were bunched in its first quarter."""
        s = sched(catchup="spread", catchup_spread=90, overlap="allow", max_instances=100)
        p = plan(s.replace(misfire_grace=1, max_executions=5, execution_count=2), self.now)
        assert [r.status for r in p.runs] == ["pending"] * 3
        offsets = [(r.due_at - self.now).total_seconds() for r in p.runs]
        assert offsets == pytest.approx([0, 30, 60])
        assert p.status == "finished"

    def test_long_backlog_is_planned_in_bounded_batches(self) -> None:
        now = T0 + timedelta(seconds=MAX_FIRES_PER_PLAN * 3 + 0.5)
        s = sched(catchup="latest", misfire_grace=0)
        p = plan(s, now, every=1)
        assert len(p.runs) == MAX_FIRES_PER_PLAN
        assert all(r.status == "missed" for r in p.runs)  # the newest is in a later batch
        assert p.next_fire_at is not None and p.next_fire_at <= now
        # work the backlog off as the engine would
        total = list(p.runs)
        while p.next_fire_at is not None and p.next_fire_at <= now:
            s = s.replace(next_fire_at=p.next_fire_at, execution_count=p.execution_count)
            p = plan(s, now, every=1)
            total.extend(p.runs)
        assert len(total) == MAX_FIRES_PER_PLAN * 3 + 1
        assert [r.status for r in total].count("pending") == 1
        assert total[-1].status == "pending"
        assert len({r.scheduled_for for r in total}) == len(total)


class TestOverlap:
    now = T0 + timedelta(seconds=1)

    def test_skip_records_a_skipped_run_while_one_is_active(self) -> None:
        p = plan(sched(overlap="skip"), self.now, [running()])
        assert [r.status for r in p.runs] == ["skipped"]
        assert "overlap=skip" in (p.runs[0].error or "")
        assert p.next_fire_at == T0 + timedelta(minutes=1)

    def test_pending_runs_count_as_active(self) -> None:
        p = plan(sched(overlap="skip"), self.now, [running(status="pending")])
        assert [r.status for r in p.runs] == ["skipped"]

    def test_allow_runs_up_to_max_instances(self) -> None:
        s = sched(overlap="allow", max_instances=2)
        assert [r.status for r in plan(s, self.now, [running()]).runs] == ["pending"]
        two = [running("a"), running("b")]
        assert [r.status for r in plan(s, self.now, two).runs] == ["skipped"]

    def test_queue_always_creates_a_pending_run(self) -> None:
        p = plan(sched(overlap="queue"), self.now, [running(), running("w", "pending")])
        assert [r.status for r in p.runs] == ["pending"]

    def test_buffer_one_keeps_at_most_one_waiting(self) -> None:
        s = sched(overlap="buffer_one")
        assert [r.status for r in plan(s, self.now, [running()]).runs] == ["pending"]
        waiting = [running(), running("w", "pending")]
        assert [r.status for r in plan(s, self.now, waiting).runs] == ["skipped"]
        # A run between attempts waits too: the fire is the one too many.
        between = [running("r", "retrying")]
        assert [r.status for r in plan(s, self.now, between).runs] == ["skipped"]

    def test_replace_cancels_active_runs_and_starts_the_new_one(self) -> None:
        p = plan(sched(overlap="replace"), self.now, [running(), running("w", "pending")])
        assert [r.status for r in p.runs] == ["pending"]
        assert set(p.cancel_run_ids) == {"old", "w"}

    def test_replace_in_a_catchup_batch_keeps_only_the_newest(self) -> None:
        s = sched(overlap="replace", catchup="all", misfire_grace=1)
        p = plan(s, T0 + timedelta(minutes=3, seconds=5))
        assert [r.status for r in p.runs] == ["cancelled"] * 3 + ["pending"]


class TestLimits:
    def test_max_executions_finishes_the_schedule(self) -> None:
        s = sched(max_executions=2, execution_count=1)
        p = plan(s, T0 + timedelta(seconds=1))
        assert p.execution_count == 2
        assert p.next_fire_at is None
        assert p.status == "finished"

    def test_end_at_is_inclusive_and_finishes(self) -> None:
        s = sched(end_at=T0 + timedelta(minutes=1))
        p = plan(s, T0 + timedelta(seconds=1))
        assert p.next_fire_at == T0 + timedelta(minutes=1)
        s2 = s.replace(next_fire_at=p.next_fire_at, execution_count=1)
        p2 = plan(s2, T0 + timedelta(minutes=1, seconds=1))
        assert [r.status for r in p2.runs] == ["pending"]
        assert p2.next_fire_at is None and p2.status == "finished"

    def test_start_at_is_inclusive(self) -> None:
        s = sched(start_at=T0 + timedelta(minutes=2))
        assert first_fire(Every(60), s, T0) == T0 + timedelta(minutes=2)
        assert next_fire(Every(60), s, T0) == T0 + timedelta(minutes=2)

    def test_a_start_at_long_past_owes_no_fire_before_the_grace(self) -> None:
        # Created a day after its start_at: the fires of that day were never missed.
        created = T0 + timedelta(days=1, seconds=5)
        s = sched(start_at=T0, misfire_grace=30)
        first = first_fire(Every(1), s, created)
        assert first == created - timedelta(seconds=30)  # within the grace: on time
        assert first_fire(Every(60), s, created) == T0 + timedelta(days=1)  # still anchored
        assert first_fire(Every(3600), s, created) == T0 + timedelta(days=1)  # 5 s ago
        later = created + timedelta(seconds=40)  # the day's last fire 45 s ago: not owed
        assert first_fire(Every(3600), s, later) == T0 + timedelta(days=1, hours=1)
        # Within the grace, start_at is kept (inclusive) as before.
        near = sched(start_at=created - timedelta(seconds=10), misfire_grace=30)
        assert first_fire(Every(1, created - timedelta(seconds=10)), near, created) == (
            created - timedelta(seconds=10)
        )

    def test_a_start_at_long_past_leaves_a_one_time_schedule_as_it_was(self) -> None:
        s = sched(start_at=T0, misfire_grace=30)
        assert first_fire(Once(T0 + timedelta(hours=1)), s, T0 + timedelta(days=1)) == (
            T0 + timedelta(hours=1)
        )

    def test_once_within_grace_at_creation_still_fires(self) -> None:
        s = sched(misfire_grace=30)
        assert first_fire(Once(T0), s, T0 + timedelta(seconds=20)) == T0
        assert first_fire(Once(T0), s, T0 + timedelta(seconds=40)) is None


class TestJitter:
    def test_jitter_is_deterministic_and_bounded(self) -> None:
        values = [fire_jitter("s1", T0 + timedelta(minutes=i), 10) for i in range(200)]
        assert values == [fire_jitter("s1", T0 + timedelta(minutes=i), 10) for i in range(200)]
        assert all(timedelta(0) <= v <= timedelta(seconds=10) for v in values)
        assert len(set(values)) > 150  # spread, not constant

    def test_jitter_depends_on_the_instant_not_on_its_zone(self) -> None:
        """It hashed the text of the fire time, so a fire read from the database (UTC)
        and the same fire computed in the schedule's zone got different delays."""
        paris = T0.astimezone(ZoneInfo("Europe/Paris"))
        assert fire_jitter("s1", paris, 60) == fire_jitter("s1", T0, 60)

    def test_every_fire_of_a_batch_gets_the_jitter_of_its_instant(self) -> None:
        class Hourly:
            """Fire times computed in the schedule's zone, as parsed schedules give them."""

            kind = "interval"

            def next_after(self, dt: datetime) -> datetime:
                return (dt + timedelta(hours=1)).astimezone(ZoneInfo("Europe/Paris"))

        s = sched(jitter=60, catchup="all", overlap="queue", misfire_grace=1)
        now = T0 + timedelta(hours=2, seconds=5)
        p = plan_fire(s, Hourly(), [], now, make_id())  # type: ignore[arg-type]
        assert [r.due_at - r.scheduled_for for r in p.runs] == [
            fire_jitter("s1", T0 + timedelta(hours=h), 60) for h in range(3)
        ]

    def test_planned_due_at_includes_jitter(self) -> None:
        p = plan(sched(jitter=10), T0 + timedelta(seconds=1))
        assert p.runs[0].due_at == T0 + fire_jitter("s1", T0, 10)


class TestRetry:
    def test_exponential_backoff_without_jitter(self) -> None:
        policy = RetryPolicy(max_attempts=5, delay=2, backoff=3, max_delay=100, jitter=False)
        assert [retry_delay(policy, n, "r") for n in (1, 2, 3, 4, 5)] == [2, 6, 18, 54, 100]

    def test_full_jitter_stays_below_the_exponential_bound(self) -> None:
        policy = RetryPolicy(max_attempts=5, delay=2, backoff=2, max_delay=60, jitter=True)
        for n in range(1, 10):
            bound = min(2 * 2 ** (n - 1), 60)
            for seed in ("a", "b", "c"):
                assert 0 <= retry_delay(policy, n, seed) <= bound

    def test_huge_attempt_numbers_cap_at_max_delay(self) -> None:
        policy = RetryPolicy(max_attempts=10_000, delay=1, backoff=10, max_delay=7, jitter=False)
        assert retry_delay(policy, 5000, "r") == 7

    def test_retry_at_stops_after_max_attempts(self) -> None:
        policy = RetryPolicy(max_attempts=3, delay=5, jitter=False)
        run = running().replace(attempt=2)
        assert retry_at(run, policy, T0) == T0 + timedelta(seconds=10)
        assert retry_at(run.replace(attempt=3), policy, T0) is None
