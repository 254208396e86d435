"""Real tickwork worker processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A ``tickwork worker`` subprocess."""

    def __init__(self, db_url: str, log_path: Path, out_path: Path, *extra: str) -> None:
        env = os.environ | {"TICKWORK_E2E_LOG": str(log_path), "PYTHONUNBUFFERED": "1"}
        self.out_path = out_path
        self._out = out_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tickwork.cli",
                "--db",
                db_url,
                "worker",
                "--import",
                "tests.e2e.e2e_tasks",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._out.close()

    def interrupt_twice(self, timeout: float = 20) -> int:
        """Ctrl-C, then Ctrl-C again once the node has said it is stopping (the person
        wants out now): the exit code."""
        self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        while "stopping" not in self.output():
            assert time.monotonic() < deadline, "the worker did not take the first Ctrl-C"
            time.sleep(0.02)
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout)
        self._out.close()
        return code

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._out.close()
        return code

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")


class Workers:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "executions.jsonl"
        self.started: list[Worker] = []

    def start(self, db_url: str, *extra: str) -> Worker:
        out = self.tmp_path / f"worker-{len(self.started)}.log"
        worker = Worker(db_url, self.log_path, out, *extra)
        self.started.append(worker)
        return worker

    def executions(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def stop_all(self) -> None:
        for w in self.started:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


def cli_status(url: str) -> dict[str, Any]:
    """``tickwork status --json`` on the database at ``url``, as an operator runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", url, "--json", "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    status: dict[str, Any] = json.loads(out.stdout)
    return status


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
