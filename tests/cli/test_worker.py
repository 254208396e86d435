"""``tickwork worker``: a graceful SIGTERM lets a running run finish, then exits 0."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli.conftest import Cli, Worker, wait_for


def test_sigterm_during_a_run_lets_it_finish(cli: Cli, tmp_path: Path) -> None:
    worker = Worker(cli.db_url, tmp_path / "worker.log", "--shutdown-grace", "15")
    try:
        worker.wait_ready()
        # Long enough for a CLI call (over a second on a busy machine) to see it running.
        cli("create", "--task", "cli:sleep", "--schedule", "manual", "--id", "six-seconds",
            "--data", '{"seconds": 6}')  # fmt: skip
        run_id = cli.json("run", "--id", "six-seconds")["id"]
        wait_for(
            lambda: cli.json("history", "--run", run_id)["status"] == "running",
            15,
            "the run to start",
        )
        code = worker.terminate(timeout=30)
    finally:
        worker.kill()
    assert code == 0, worker.output()
    run = cli.json("history", "--run", run_id)
    assert run["status"] == "succeeded", run
    assert run["result"] == "slept 6 s"
    assert run["attempt"] == 1
    out = worker.output()
    assert "tickwork worker: node" in out and "cli:sleep" in out
    assert "Traceback" not in out
    # The node deregistered: no live node is left.
    assert cli.json("status")["nodes"] == []


def test_sigint_on_an_idle_worker_exits_0(cli: Cli, tmp_path: Path) -> None:
    worker = Worker(cli.db_url, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert cli.json("status")["nodes"][0]["tasks"] == [
            "cli:echo",
            "cli:fail",
            "cli:short_timeout",
            "cli:sleep",
        ]
        worker.proc.send_signal(signal.SIGINT)
        code = worker.proc.wait(20)
    finally:
        worker.kill()
    assert code == 0, worker.output()
    assert "SIGINT: stopping" in worker.output()
