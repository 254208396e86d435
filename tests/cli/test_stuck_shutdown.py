"""A worker told to stop exits within its grace period (plus a few seconds) even while
a sync task that never returns holds a thread."""

from __future__ import annotations

import time
from pathlib import Path

from tests.cli.conftest import Cli, Worker, wait_for


def test_sigterm_exits_within_grace_despite_a_hung_thread(cli: Cli, tmp_path: Path) -> None:
    worker = Worker(
        cli.db_url,
        tmp_path / "worker.log",
        "--import",
        "tests.cli.hang_tasks",
        "--shutdown-grace",
        "2",
    )
    try:
        worker.wait_ready()
        cli("create", "--task", "cli:hang", "--schedule", "manual", "--id", "hang")
        run_id = cli.json("run", "--id", "hang")["id"]
        wait_for(
            lambda: cli.json("history", "--run", run_id)["status"] == "running",
            15,
            "the hung run to start",
        )
        started = time.monotonic()
        code = worker.terminate(timeout=30)
        took = time.monotonic() - started
    finally:
        worker.kill()
    assert took < 2 + 5, f"took {took:.1f} s\n{worker.output()}"
    assert code == 0, worker.output()
    assert "Traceback" not in worker.output()
    run = cli.json("history", "--run", run_id)
    assert run["status"] in ("pending", "retrying"), run  # interrupted: due again at once
