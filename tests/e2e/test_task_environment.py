"""A real worker whose task changes what the whole process shares: its working
directory, its environment. The node's database is the one it opened, whatever the
task does."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.e2e.conftest import ROOT, Workers, wait_for
from tickwork import SyncScheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_a_task_changing_the_working_directory_leaves_a_relative_sqlite_path_alone(
    workers: Workers, sqlite_url: str, tmp_path: Path
) -> None:
    """The worker is given its database as a path relative to its working directory.
    Before: once a task had changed that directory, each new connection of the node
    looked for the file from there: it failed to open, or opened (and created) another
    file without tables; fires, heartbeats and ends failed (``store unavailable``), and
    runs stayed ``running``."""
    path = sqlite_url.removeprefix("sqlite:///")
    worker = workers.start(f"sqlite:///{os.path.relpath(path, ROOT)}")
    with SyncScheduler(sqlite_url, engine=False) as client:
        wait_for(lambda: "e2e:chdir" in client.known_tasks(), 20, "the worker")
        elsewhere = tmp_path / "elsewhere" / "deeper"
        elsewhere.mkdir(parents=True)
        client.add_schedule(
            "e2e:chdir",
            "manual",
            id="chdir",
            data={"to": str(elsewhere)},
            retry={"max_attempts": 1},
        )
        moved = client.run_now("chdir", wait=True, timeout=20)
        assert (moved.status, moved.result) == ("succeeded", str(elsewhere))
        # Enough at once that the node opens new connections.
        ids = [f"every{i}" for i in range(30)]
        for sid in ids:
            client.add_schedule("e2e:sync_slow", "every 1s", id=sid, data={"seconds": 0.3})

        def ended() -> Counter[str]:
            return Counter(r.status for sid in ids for r in client.list_runs(sid))

        wait_for(lambda: ended()["succeeded"] >= 90, 20, f"runs to succeed: {ended()}")
        assert set(ended()) <= {"succeeded", "running", "skipped"}, ended()
    assert worker.terminate() == 0, worker.output()
    assert "store unavailable" not in worker.output()
    assert list(elsewhere.iterdir()) == []


def test_a_task_closing_stdout_and_stderr_leaves_the_nodes_log_alone(
    workers: Workers, sqlite_url: str
) -> None:
    """Before: ``sys.stderr.close()`` closed the node's own stderr: its log fell silent
    (a later failure went unsaid) and on SIGTERM it exited 1, ``lost sys.stderr``."""
    worker = workers.start(sqlite_url)
    with SyncScheduler(sqlite_url, engine=False) as client:
        wait_for(lambda: "e2e:close_streams" in client.known_tasks(), 20, "the worker")
        client.add_schedule("e2e:close_streams", "manual", id="close")
        client.add_schedule("e2e:fail", "manual", id="fail", retry={"max_attempts": 1})
        closed = client.run_now("close", wait=True, timeout=20)
        assert (closed.status, closed.result) == ("succeeded", "closed")
        assert [r.message for r in closed.logs] == ["done with my output"]
        failed = client.run_now("fail", wait=True, timeout=20)
        assert failed.status == "failed"
        said = f"run {failed.id} (schedule fail, task e2e:fail) attempt 1 failed"
        wait_for(lambda: said in worker.output(), 5, "the node to log the failure")
    assert worker.terminate() == 0, worker.output()
    assert "stopped" in worker.output().splitlines()[-1]


@pytest.mark.parametrize(
    ("task", "code"), [("e2e:fork", 0), ("e2e:fork_async", 4), ("e2e:fork_process", 0)]
)
def test_a_forked_child_leaving_its_task_exits_and_the_run_ends(
    workers: Workers, sqlite_url: str, task: str, code: int
) -> None:
    """The task forks; its child returns from the task (or raises out of it) instead of
    ending with ``os._exit``. Before: on the thread executor the child went on as a copy
    of the node, its thread waiting for work for good, and the task waiting for its
    child, so the run stayed ``running`` until its timeout and the copy was left behind;
    on the async executor the copy ran the node's event loop; on the process executor
    the child sent its own result for the attempt's."""
    worker = workers.start(sqlite_url)
    try:
        with SyncScheduler(sqlite_url, engine=False) as client:
            wait_for(lambda: task in client.known_tasks(), 20, "the worker")
            client.add_schedule(task, "manual", id="fork", retry={"max_attempts": 1})
            client.add_schedule("e2e:tick", "manual", id="tick")
            run = client.run_now("fork", wait=True, timeout=20)
            assert (run.status, run.result) == ("succeeded", {"child": code}), run.error
            (forked,) = [e for e in workers.executions() if e.get("phase") == "forked"]
            said = f"run {run.id}: process {forked['child_pid']}, forked by the task, returned"
            wait_for(lambda: said in worker.output(), 5, "the child's warning")
            assert client.run_now("tick", wait=True, timeout=20).status == "succeeded"
        assert worker.terminate() == 0, worker.output()
    finally:  # the copies of the node, had they been left behind
        for line in workers.executions():
            if "child_pid" in line:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(line["child_pid"]).kill()


def test_a_task_replacing_the_nodes_signal_handlers_does_not_keep_it_from_stopping(
    workers: Workers, sqlite_url: str
) -> None:
    """Before: after the task, SIGTERM was ignored: the worker went on for good."""
    worker = workers.start(sqlite_url)
    with SyncScheduler(sqlite_url, engine=False) as client:
        wait_for(lambda: "e2e:take_signals" in client.known_tasks(), 20, "the worker")
        client.add_schedule("e2e:take_signals", "manual", id="take")
        assert client.run_now("take", wait=True, timeout=20).status == "succeeded"
        for name in ("SIGTERM", "SIGINT"):
            said = f"the node's handler of {name} was replaced"
            wait_for(lambda said=said: said in worker.output(), 5, f"{name} to be put back")
    assert worker.terminate(timeout=15) == 0, worker.output()


def test_a_task_reconfiguring_logging_leaves_the_capture_of_runs_alone(
    workers: Workers, sqlite_url: str
) -> None:
    """Before: once a task had called ``dictConfig``, no run's log records were stored
    (the capturing handler was gone from the root logger), and tickwork's own loggers
    were disabled."""
    worker = workers.start(sqlite_url)
    with SyncScheduler(sqlite_url, engine=False) as client:
        wait_for(lambda: "e2e:configure_logging" in client.known_tasks(), 20, "the worker")
        client.add_schedule("e2e:configure_logging", "manual", id="configure")
        client.add_schedule("e2e:log_info", "manual", id="log")
        assert client.run_now("configure", wait=True, timeout=20).status == "succeeded"
        said = "logging was reconfigured (by a task?); put back: the capture of runs' log "
        said += "records; tickwork's loggers, disabled"
        wait_for(lambda: said in worker.output(), 5, "the capture to be put back")
        logged = client.run_now("log", wait=True, timeout=20)
        assert [(r.logger, r.message) for r in logged.logs] == [
            ("tickwork.task.e2e:log_info", "a line of mine")
        ]
    assert worker.terminate() == 0, worker.output()


@pytest.mark.postgres
def test_a_task_setting_libpq_variables_leaves_the_nodes_connections_alone(
    workers: Workers, pg_url: str
) -> None:
    """A task sets ``PGSSLMODE`` and ``PGOPTIONS`` in the node's environment, then the
    server drops every connection. Before: libpq read the environment at each
    connect, so the node's new connections asked for SSL the server does not offer: it
    never connected again, and its every-second schedule stopped firing for good."""
    worker = workers.start(pg_url)
    with SyncScheduler(pg_url, engine=False) as client:
        wait_for(lambda: "e2e:set_pg_env" in client.known_tasks(), 20, "the worker")
        client.add_schedule("e2e:set_pg_env", "manual", id="env", retry={"max_attempts": 1})
        assert client.run_now("env", wait=True, timeout=20).status == "succeeded"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        dropped = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert dropped is not None and dropped[0] >= 1
    with SyncScheduler(pg_url, engine=False) as client:
        client.add_schedule("e2e:tick", "every 1s", id="tick")

        def succeeded() -> int:
            return sum(r.status == "succeeded" for r in client.list_runs("tick"))

        wait_for(lambda: succeeded() >= 3, 20, "the every-second schedule to run")
    assert worker.terminate() == 0, worker.output()
    assert "SSL was required" not in worker.output()
