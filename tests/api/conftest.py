"""A real ``tickwork serve`` process for the API tests, and HTTP clients for it.

``serve_api(db_url, env=...)`` starts ``python -m tickwork.cli --db URL serve --port 0
--import tests.api.api_tasks`` with ``TICKWORK_ADMIN_TOKEN`` set, waits for the line
that names its URL and returns a ``Server``; every server a test started is stopped
(SIGTERM, then SIGKILL) when the test ends. ``server`` is one on a fresh SQLite file;
``db_server`` the same on SQLite and on PostgreSQL. Other test packages reuse these
(``from tests.api.conftest import Server, start_server``).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TASKS_MODULE = "tests.api.api_tasks"
ADMIN_TOKEN = "test-admin-token-0123456789"
_READY = re.compile(r"tickwork serve: (http://\S+?)/ ")


class Server:
    """One ``tickwork serve`` process: its URL, admin token, output, and clients."""

    def __init__(
        self, proc: subprocess.Popen[str], url: str, admin_token: str | None, db_url: str
    ) -> None:
        self.proc = proc
        self.url = url
        self.api = f"{url}/api/v1"
        self.admin_token = admin_token
        self.db_url = db_url
        self.stdout: list[str] = []
        self.stderr_path: Path | None = None
        self._clients: list[httpx.Client] = []
        self.pump: threading.Thread | None = None

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client on ``/api/v1`` with ``token`` (default: the admin token;
        ``""``: none)."""
        token = self.admin_token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        c = httpx.Client(base_url=self.api, headers=headers, timeout=30, **kwargs)
        self._clients.append(c)
        return c

    @property
    def admin(self) -> httpx.Client:
        return self.client()

    def user_token(self, user: str, **options: Any) -> str:
        """A fresh API token for ``user`` (made by the admin over the API)."""
        r = self.client().post("/tokens", json={"user": user, **options})
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the server's ``/metrics`` now (see ``metric``)."""
        return metric(httpx.get(f"{self.url}/metrics", timeout=10).text, name, **labels)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""

    def output(self) -> str:
        return "".join(self.stdout) + self.stderr()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Signal the process and wait for its exit code (SIGKILL after ``timeout``)."""
        for c in self._clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.pump is not None:
            self.pump.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return int(self.proc.returncode)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        found = re.fullmatch(pattern, line)
        if found:
            return float(found.group(1))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def serve_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def serve_refusal(db_url: str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Start ``tickwork serve`` with ``args`` (and ``env``) it must refuse to start with:
    its stderr, once it exited non-zero without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", db_url, "serve", "--port", "0", *args],
        cwd=ROOT,
        env=serve_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0, (args, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def start_server(
    db_url: str,
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    admin_token: str | None = ADMIN_TOKEN,
    args: tuple[str, ...] = (),
    timeout: float = 30,
) -> Server:
    """Start ``tickwork serve`` on a free port and wait until it answers."""
    extra = dict(env or {})
    if admin_token is not None:
        extra["TICKWORK_ADMIN_TOKEN"] = admin_token
    stderr_path = tmp_path / f"serve-{time.monotonic_ns()}.err"
    stderr = stderr_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tickwork.cli",
            "--db",
            db_url,
            "serve",
            "--port",
            "0",
            "--import",
            TASKS_MODULE,
            "--shutdown-grace",
            "5",
            *args,
        ],
        cwd=ROOT,
        env=serve_env(extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stderr.close()
    lines: queue.Queue[str | None] = queue.Queue()
    server = Server(proc, "", admin_token, db_url)
    server.stderr_path = stderr_path

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.stdout.append(line)
            lines.put(line)
        lines.put(None)

    server.pump = threading.Thread(target=pump, daemon=True)
    server.pump.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            server.stop(signal.SIGKILL)
            raise AssertionError(
                f"tickwork serve did not start in {timeout} s:\n{server.output()}"
            ) from None
        if line is None:
            server.stop()
            raise AssertionError(
                f"tickwork serve exited {proc.returncode} before serving:\n{server.output()}"
            )
        found = _READY.search(line)
        if found:
            server.url = found.group(1)
            server.api = f"{server.url}/api/v1"
            return server


StartServer = Callable[..., Server]


@pytest.fixture
def serve_api(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers (``serve_api(db_url, env=..., admin_token=..., args=...)``); all
    are stopped when the test ends. Ask for the database fixture (``pg_url``...) before
    this one, so the servers stop before their database is dropped."""
    started: list[Server] = []

    def start(db_url: str, **kwargs: Any) -> Server:
        server = start_server(db_url, tmp_path, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGTERM, 10)


@pytest.fixture
def server(sqlite_url: str, serve_api: StartServer) -> Server:
    """``tickwork serve`` on this test's own SQLite file, admin token ``ADMIN_TOKEN``."""
    return serve_api(sqlite_url)


@pytest.fixture
def db_server(db_url: str, serve_api: StartServer) -> Server:
    """The same on SQLite and on a fresh PostgreSQL database."""
    return serve_api(db_url)
