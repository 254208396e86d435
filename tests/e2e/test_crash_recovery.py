"""Real worker processes on one SQLite file, killed with SIGKILL and restarted."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import Workers, wait_for
from tickwork import SyncScheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _client(db_url: str) -> SyncScheduler:
    return SyncScheduler(db_url, engine=False)


def test_sigkill_mid_run_then_restart_loses_and_doubles_nothing(
    workers: Workers, sqlite_url: str
) -> None:
    first = workers.start(sqlite_url)
    with _client(sqlite_url) as client:
        wait_for(lambda: "e2e:tick" in client.known_tasks(), 20, "the worker to publish tasks")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        client.add_schedule(
            "e2e:tick", "every 1s", id="tick", start_at=start, catchup="all", overlap="queue"
        )
        client.add_schedule(
            "e2e:slow", "manual", id="slow", data={"seconds": 4}, retry={"max_attempts": 3}
        )
        wait_for(lambda: datetime.now(UTC) > start + timedelta(seconds=2), 10, "ticks")
        slow = client.run_now("slow")
        wait_for(
            lambda: any(
                e.get("phase") == "start"
                for e in workers.executions()
                if e["schedule_id"] == "slow"
            ),
            15,
            "the slow run to start",
        )
        first.kill()
        killed_at = datetime.now(UTC)
        time.sleep(3)  # down for three scheduled seconds
        second = workers.start(sqlite_url)
        restarted = time.monotonic()

        def slow_done() -> bool:
            return client.get_run(slow.id).status == "succeeded"

        wait_for(slow_done, 25, "the lost run to be retried and succeed")
        takeover = time.monotonic() - restarted
        wait_for(lambda: datetime.now(UTC) > killed_at + timedelta(seconds=6), 10, "more ticks")
        client.pause("tick")
        code = second.terminate()
        assert code == 0, second.output()

        run = client.get_run(slow.id)
        assert [a.status for a in run.attempts] == ["lost", "succeeded"]
        assert run.attempt == 2
        # A dead process on this host is known dead at once, not after the 30 s lease.
        assert takeover < 15, f"takeover took {takeover:.1f} s"

        runs = client.list_runs("tick", limit=1000)
        times = sorted(r.scheduled_for for r in runs)
        assert len(times) == len(set(times)), "two runs for one scheduled second"
        expected = [times[0] + timedelta(seconds=i) for i in range(len(times))]
        assert times == expected, "a scheduled second is missing"
        assert times[0] == start
        assert len(times) >= 8
        statuses = Counter(r.status for r in runs)
        assert set(statuses) <= {"succeeded"}, statuses
        # every run executed; a run executed twice only if its attempt was lost
        executed = Counter(e["run_id"] for e in workers.executions() if e["schedule_id"] == "tick")
        for r in runs:
            assert executed[r.id] >= 1
            if executed[r.id] > 1:
                assert r.attempt > 1


def test_two_workers_on_one_sqlite_file_never_run_a_fire_twice(
    workers: Workers, sqlite_url: str
) -> None:
    a = workers.start(sqlite_url)
    b = workers.start(sqlite_url)
    with _client(sqlite_url) as client:
        wait_for(lambda: len(client.nodes()) == 2, 20, "both workers to register")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        for i in range(5):
            client.add_schedule(
                "e2e:tick",
                "every 1s",
                id=f"t{i}",
                start_at=start,
                catchup="all",
                overlap="allow",
                max_instances=5,
            )
        wait_for(lambda: datetime.now(UTC) > start + timedelta(seconds=6), 15, "six seconds")
        client.pause()
        time.sleep(1)
        assert a.terminate() == 0 and b.terminate() == 0
        executions = [e for e in workers.executions() if e["schedule_id"].startswith("t")]
        per_fire = Counter((e["schedule_id"], e["scheduled_for"]) for e in executions)
        assert per_fire, "nothing ran"
        assert max(per_fire.values()) == 1, [k for k, v in per_fire.items() if v > 1]
        for i in range(5):
            runs = client.list_runs(f"t{i}", limit=1000)
            times = sorted(r.scheduled_for for r in runs)
            assert len(times) >= 6
            assert times == [start + timedelta(seconds=k) for k in range(len(times))]
            assert all(r.status == "succeeded" for r in runs)
