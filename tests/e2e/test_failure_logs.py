"""A task failing on every attempt, run by a worker subprocess: the worker's stderr says
which run failed and why, as text or as JSON lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, wait_for
from tickwork import SyncScheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_failing_task_is_named_on_the_workers_stderr(
    fmt: str, sqlite_url: str, tmp_path: Path
) -> None:
    stderr_path, stdout_path = tmp_path / "stderr", tmp_path / "stdout"
    with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tickwork.cli",
                "--db",
                sqlite_url,
                "worker",
                "--import",
                "tests.e2e.process_tasks",
                "--log-format",
                fmt,
            ],
            cwd=ROOT,
            env=os.environ | {"TICKWORK_E2E_LOG": str(tmp_path / "log"), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=err,
        )
    try:
        with SyncScheduler(sqlite_url, engine=False) as client:
            wait_for(lambda: "e2e:always_fails" in client.known_tasks(), 20, "the worker")
            client.add_schedule(
                "e2e:always_fails",
                "manual",
                id="doomed",
                retry={"max_attempts": 2, "delay": 0.2, "jitter": False},
            )
            run = client.run_now("doomed")
            wait_for(lambda: client.get_run(run.id).status == "failed", 20, "the run to fail")
            stored = [(r.attempt, r.logger, r.message) for r in client.get_run(run.id).logs]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    stderr = stderr_path.read_text()
    for attempt in (1, 2):
        assert (attempt, "stderr", "the disk answered: full") in stored
    assert "the disk answered" not in stderr  # printed into the run, not the node's log
    if fmt == "text":
        assert (
            f"WARNING tickwork.runs: run {run.id} (schedule doomed, task e2e:always_fails) "
            "attempt 1 failed: ValueError: the disk is full (attempt 1); retrying at "
        ) in stderr
        assert (
            f"run {run.id} (schedule doomed, task e2e:always_fails) attempt 2 failed: "
            "ValueError: the disk is full (attempt 2); run failed"
        ) in stderr
        assert "second line, not logged" not in stderr
        assert f"WARNING tests.e2e.process_tasks: checking the disk (run {run.id})" in stderr
        return
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line parses
    assert lines, "nothing on stderr"
    mine = [e for e in lines if e.get("run_id") == run.id and e["logger"] == "tickwork.runs"]
    assert [(e["level"], e["attempt"], e["status"], e["error"]) for e in mine] == [
        ("WARNING", 1, "failed", "ValueError: the disk is full (attempt 1)"),
        ("WARNING", 2, "failed", "ValueError: the disk is full (attempt 2)"),
    ]
    assert all(e["schedule_id"] == "doomed" and e["task"] == "e2e:always_fails" for e in mine)
    assert "retry_at" in mine[0] and "retry_at" not in mine[1]
    assert mine[1]["message"].endswith("; run failed")
    # The task's own records on the node's log say which run they come from.
    own = [e for e in lines if e["logger"] == "tests.e2e.process_tasks"]
    assert [(e["message"], e["run_id"]) for e in own] == [("checking the disk", run.id)] * 2
