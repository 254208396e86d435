"""A worker SIGKILLed (or told to stop with Ctrl-C twice) while a process-executor task
(with a child of its own) runs: no process of the task outlives it, and the retry runs
alone."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import Workers, wait_for
from tickwork import SyncScheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped runs no more)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C twice"])
def test_a_killed_node_leaves_no_task_process_and_the_retry_runs_alone(
    how: str, workers: Workers, sqlite_url: str
) -> None:
    first = workers.start(sqlite_url, "--import", "tests.e2e.process_tasks")
    task_pids: list[int] = []
    try:
        with SyncScheduler(sqlite_url, engine=False) as client:
            wait_for(lambda: "e2e:family" in client.known_tasks(), 20, "the worker's tasks")
            client.add_schedule(
                "e2e:family",
                "manual",
                id="family",
                # Long enough, with Ctrl-C, for the second one to come while it runs.
                data={"seconds": 2 if how == "SIGKILL" else 6},
                retry={"max_attempts": 3, "delay": 0.5, "jitter": False},
            )
            run = client.run_now("family")

            def lines(attempt: int, phase: str) -> list[dict[str, Any]]:
                return [
                    e
                    for e in workers.executions()
                    if e["run_id"] == run.id and e["attempt"] == attempt and e["phase"] == phase
                ]

            wait_for(lambda: lines(1, "child-beat"), 20, "attempt 1 and its child to run")
            (start,) = lines(1, "start")
            task_pids += [start["pid"], start["child_pid"]]
            assert all(alive(p) for p in task_pids)

            if how == "SIGKILL":
                first.kill()
            else:
                assert first.interrupt_twice() == 1, first.output()
                assert "exiting now; running runs will be retried" in first.output()
            killed = time.monotonic()
            while any(alive(p) for p in task_pids) and time.monotonic() - killed < 2:
                time.sleep(0.02)
            left = [p for p in task_pids if alive(p)]
            assert left == [], f"processes of the task left 2 s after the kill: {left}"

            second = workers.start(sqlite_url, "--import", "tests.e2e.process_tasks")
            wait_for(
                lambda: client.get_run(run.id).status == "succeeded", 40, "the retry to succeed"
            )
            assert second.terminate() == 0, second.output()

            final = client.get_run(run.id)
            assert [a.status for a in final.attempts] == ["lost", "succeeded"]
            assert final.result == 2  # the fence the retry saw
            (retry_start,) = lines(2, "start")
            assert retry_start["fence"] > start["fence"] == 1
            # Alone: after the retry began, no line came from the first attempt's
            # processes (lines are appended in the order they were written).
            log = [e for e in workers.executions() if e["run_id"] == run.id]
            first_of_retry = next(i for i, e in enumerate(log) if e["attempt"] == 2)
            assert all(e["attempt"] == 2 for e in log[first_of_retry:])
            assert lines(2, "child-beat") and lines(2, "done")
            # The node that took the run over said so on its log.
            assert f"run {run.id} (schedule family, task e2e:family) attempt 1 lost" in (
                second.output()
            )
    finally:
        for pid in task_pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
