"""``tickwork serve`` on an address it cannot listen on (a port in use): it stops at
once, naming the address and the fix, with its engine process, and makes no admin
token that nobody would ever see."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

from tests.api.conftest import ROOT, serve_env
from tickwork.engine.scheduler import Scheduler


def test_a_port_in_use_stops_serve_with_the_reason(sqlite_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "tickwork.cli", "--db", sqlite_url, "serve",
             "--port", str(port), "--shutdown-grace", "5"],
            cwd=ROOT,
            env=serve_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,  # before: it went on, without HTTP, until signalled
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "address already in use" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: could not listen on 127.0.0.1:{port}"), proc.stderr
    assert "give another --port" in last
    assert "tw_" not in proc.stdout

    async def tokens() -> int:
        async with Scheduler(sqlite_url, engine=False) as client:
            return len(await client.list_tokens())

    # The next start, on a free port, makes the first admin token and shows it.
    assert asyncio.run(tokens()) == 0
