"""The real ``tickwork`` command, run as a subprocess on real SQLite files.

``tickwork`` runs the CLI once (``python -m tickwork.cli --db URL ...``) with stdin
closed, as a script would. ``worker`` is a real ``tickwork worker`` process importing
``tests.cli.cli_tasks``; it is stopped with SIGTERM and must exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tickwork.store import open_store

ROOT = Path(__file__).resolve().parents[2]
TASKS_MODULE = "tests.cli.cli_tasks"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("COLUMNS", None)
    return env


class Cli:
    """Runs ``tickwork --db URL ...`` and returns the finished process. With ``db_url``
    empty, no ``--db`` is given; ``env`` adds variables (``TICKWORK_URL``...)."""

    def __init__(self, db_url: str, env: Mapping[str, str] | None = None) -> None:
        self.db_url = db_url
        self.env = dict(env or {})

    def __call__(
        self, *args: str, expect: int | None = 0, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tickwork.cli",
                *(["--db", self.db_url] if self.db_url else []),
                *args,
            ],
            cwd=ROOT,
            env=cli_env() | self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if expect is not None:
            assert proc.returncode == expect, (
                f"tickwork {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str, expect: int | None = 0) -> Any:
        """``tickwork --json ...``: the decoded stdout."""
        return json.loads(self("--json", *args, expect=expect).stdout)

    def error(self, *args: str, code: int = 1) -> str:
        """Run a command that must fail: its one-line ``error: ...`` from stderr."""
        proc = self(*args, expect=code)
        assert "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), proc.stderr
        return lines[-1]


class Worker:
    """A ``tickwork worker`` subprocess with its combined output in a file."""

    def __init__(self, db_url: str, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tickwork.cli",
                "--db",
                db_url,
                "worker",
                "--import",
                TASKS_MODULE,
                *extra,
            ],
            cwd=ROOT,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20) -> None:
        """Until the worker printed its banner (it has published its tasks by then)."""
        wait_for(
            lambda: "tickwork worker: node" in self.output() or self.proc.poll() is not None,
            timeout,
            "the worker to start",
        )
        assert self.proc.poll() is None, f"the worker exited early:\n{self.output()}"

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cli(sqlite_url: str) -> Cli:
    """The CLI on this test's own empty database (created: commands that only read
    refuse a SQLite file that does not exist)."""
    open_store(sqlite_url).close()
    return Cli(sqlite_url)


@pytest.fixture(scope="session")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'tickwork.db'}"


@pytest.fixture(scope="session")
def worker(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker for the session on ``shared_db``; SIGTERM at the end must exit 0."""
    w = Worker(shared_db, tmp_path_factory.mktemp("worker") / "worker.log", "--lease-ttl", "5")
    try:
        w.wait_ready()
    except BaseException:
        w.kill()
        raise
    yield w
    code = w.terminate()
    assert code == 0, f"the worker exited {code} on SIGTERM:\n{w.output()}"


@pytest.fixture
def wcli(shared_db: str, worker: Worker) -> Cli:
    """The CLI on the database a running worker serves."""
    return Cli(shared_db)
