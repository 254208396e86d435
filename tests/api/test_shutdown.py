"""SIGTERM drains ``tickwork serve``: a request in flight completes, new connections are
refused, the engine lets its running run finish, and the process exits within the
grace period."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from urllib.parse import urlsplit

from tests.api.conftest import ADMIN_TOKEN, StartServer
from tickwork.engine.scheduler import Scheduler


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_sigterm_completes_a_request_in_flight_and_refuses_new_ones(
    sqlite_url: str, serve_api: StartServer
) -> None:
    grace = 8.0
    server = serve_api(sqlite_url, args=("--shutdown-grace", str(grace)))
    port = urlsplit(server.url).port
    assert port is not None
    admin = server.admin
    admin.post(
        "/schedules",
        json={"id": "slow", "task": "api:sleep", "schedule": "manual", "data": {"seconds": 2}},
    )
    run = admin.post("/schedules/slow/run").json()
    deadline = time.monotonic() + 10
    while admin.get(f"/runs/{run['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # A request whose body is still arriving when the signal comes.
    body = json.dumps({"id": "late", "task": "api:echo", "schedule": "manual"}).encode()
    head = (
        f"POST /api/v1/schedules HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=20)
    conn.sendall(head + body[:10])
    time.sleep(0.3)  # the server has read the head: the request is in flight
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)

    deadline = time.monotonic() + 5
    while not _refused(port):
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.05)
    assert server.proc.poll() is None  # still draining

    conn.sendall(body[10:])
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        answer += chunk
    conn.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 201"), answer[:500]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["id"] == "late"

    assert server.proc.wait(grace + 5) == 0
    assert time.monotonic() - signalled < grace + 2
    assert "SIGTERM: stopping" in server.stderr()

    async def stored() -> tuple[str, str]:
        async with Scheduler(sqlite_url, engine=False) as s:
            return (await s.get_run(run["id"])).status, (await s.get_schedule("late")).id

    assert asyncio.run(stored()) == ("succeeded", "late")
