"""A real worker whose tasks break the rules of an attempt: one calls ``sys.exit``, one
ignores its cancellation. The node outlives the first and still exits on SIGTERM with
the second running."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Workers, wait_for
from tickwork import SyncScheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_a_task_calling_sys_exit_fails_its_run_not_the_worker(
    workers: Workers, sqlite_url: str
) -> None:
    """Before: the worker's event loop stopped with the SystemExit; the process exited
    with the task's code and without a word, its run left ``running``."""
    worker = workers.start(sqlite_url)
    with SyncScheduler(sqlite_url, engine=False) as client:
        wait_for(lambda: "e2e:exit" in client.known_tasks(), 20, "the worker")
        client.add_schedule("e2e:exit", "manual", id="exit", retry={"max_attempts": 1})
        client.add_schedule("e2e:tick", "manual", id="tick")
        run = client.run_now("exit")
        wait_for(lambda: client.get_run(run.id).done, 20, "the exiting run to end")
        ended = client.get_run(run.id)
        assert (ended.status, ended.error) == ("failed", "SystemExit: 3")
        assert worker.proc.poll() is None, worker.output()
        tick = client.run_now("tick")
        wait_for(lambda: client.get_run(tick.id).status == "succeeded", 20, "the next run")
    assert worker.terminate() == 0, worker.output()


def test_a_worker_exits_on_sigterm_with_a_task_that_ignores_its_cancellation(
    workers: Workers, sqlite_url: str
) -> None:
    """Before: the node stopped, then ``asyncio.run`` waited for the task for good; only
    a second signal (or SIGKILL) ended the process."""
    worker = workers.start(sqlite_url, "--shutdown-grace", "0.5")
    with SyncScheduler(sqlite_url, engine=False) as client:
        wait_for(lambda: "e2e:deaf" in client.known_tasks(), 20, "the worker")
        client.add_schedule("e2e:deaf", "manual", id="deaf", retry={"max_attempts": 2})
        run = client.run_now("deaf")
        wait_for(lambda: workers.executions(), 20, "the deaf task to start")
        started = time.monotonic()
        code = worker.terminate(timeout=30)
        took = time.monotonic() - started
        assert code == 0, worker.output()
        # shutdown grace 0.5 s, then stop_grace (5 s) for the cancelled task, then 1 s
        assert took < 12, took
        stopped = client.get_run(run.id)
    assert stopped.status == "retrying"
    assert stopped.error is not None and "ignored its cancellation" in stopped.error
    out = worker.output()
    assert "did not stop within 5 s of its interruption by the node's shutdown" in out
    assert "exiting with 1 async task(s) still running" in out
