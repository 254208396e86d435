"""``tickwork serve`` runs its engine in a child process it supervises: the child
executes the runs, dies with serve (even on SIGKILL), drains with it on SIGTERM, is
restarted when it dies alone, and starts a run asked for over the API at once."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Server, StartServer

_ENGINE = re.compile(r"\(engine process (\d+)\)")


def engine_pid(server: Server) -> int:
    found = _ENGINE.search("".join(server.stdout))
    assert found, server.output()
    return int(found.group(1))


def gone(pid: int) -> bool:
    """The process is gone (or a zombie nobody reaped yet: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def health(server: Server) -> httpx.Response:
    return httpx.get(f"{server.url}/health", timeout=10)


def restarts(server: Server) -> float:
    return server.metric("tickwork_engine_restarts_total")


def finished(admin: httpx.Client, run_id: str, timeout: float = 20) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = admin.get(f"/runs/{run_id}").json()
        return run if run["status"] not in ("pending", "running", "retrying") else None

    result: dict[str, Any] = wait_until(f"run {run_id} to end", done, timeout)
    return result


def test_the_engine_process_executes_the_schedules(sqlite_url: str, serve_api: StartServer) -> None:
    server = serve_api(sqlite_url)
    pid = engine_pid(server)
    assert pid != server.proc.pid and not gone(pid)
    body = health(server).json()
    assert body["engine"] == "ok" and body["status"] == "ok"
    node = body["node"]
    assert node.split(":")[1] == str(pid)  # the node is the child's
    admin = server.admin
    r = admin.post(
        "/schedules", json={"id": "tick", "task": "api:echo", "schedule": "every 1s", "data": {}}
    )
    assert r.status_code == 201, r.text

    def two_succeeded() -> list[dict[str, Any]] | None:
        items = admin.get("/runs", params={"schedule": "tick", "status": "succeeded"}).json()
        return items["items"] if len(items["items"]) >= 2 else None

    runs = wait_until("two fires", two_succeeded, 15)
    for run in runs:
        assert finished(admin, run["id"])["node"] == node
    # tickwork_leader reports the engine's node, the only one: it leads.
    wait_until("the engine to lead", lambda: health(server).json()["leader"], 10)
    assert server.metric("tickwork_leader") == 1


def test_sigkill_of_serve_leaves_no_engine_behind(sqlite_url: str, serve_api: StartServer) -> None:
    server = serve_api(sqlite_url)
    pid = engine_pid(server)
    admin = server.admin
    admin.post(
        "/schedules",
        json={"id": "slow", "task": "api:sleep", "schedule": "manual", "data": {"seconds": 30}},
    )
    run = admin.post("/schedules/slow/run").json()
    wait_until(
        "the run to start",
        lambda: admin.get(f"/runs/{run['id']}").json()["status"] == "running",
        10,
    )
    server.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_until("the engine process to die", lambda: gone(pid), 2.0)
    assert time.monotonic() - killed < 2.0


def test_sigterm_drains_the_requests_and_the_engine(
    sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(sqlite_url, args=("--shutdown-grace", "10"))
    pid = engine_pid(server)
    admin = server.admin
    admin.post(
        "/schedules",
        json={"id": "slow", "task": "api:sleep", "schedule": "manual", "data": {"seconds": 1.5}},
    )
    run = admin.post("/schedules/slow/run").json()
    wait_until(
        "the run to start",
        lambda: admin.get(f"/runs/{run['id']}").json()["status"] == "running",
        10,
    )
    signalled = time.monotonic()
    code = server.stop(signal.SIGTERM, timeout=20)
    assert code == 0, server.output()
    assert time.monotonic() - signalled < 10
    assert gone(pid)
    assert "ERROR" not in server.stderr() and "while stopping" not in server.stderr()
    assert "Fatal" not in server.stderr(), server.stderr()
    # The run finished in the engine before it stopped (not cancelled, not lost).
    from tickwork.engine.sync import SyncScheduler

    with SyncScheduler(server.db_url, engine=False) as client:
        assert client.get_run(run["id"]).status == "succeeded"


def test_a_dead_engine_process_is_restarted_and_runs_resume(
    sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(sqlite_url)
    first = engine_pid(server)
    old_node = health(server).json()["node"]
    assert restarts(server) == 0
    os.kill(first, signal.SIGKILL)
    down = wait_until(
        "/health to say the engine is down", lambda: health(server).status_code == 503, 5
    )
    assert down
    assert health(server).json()["engine"] == "down"
    body = wait_until(
        "a new engine",
        lambda: (b := health(server).json())["engine"] == "ok" and b["node"] != old_node and b,
        20,
    )
    assert "ERROR" in server.stderr() and f"engine process {first}" in server.stderr()
    assert restarts(server) == 1  # for alerts on an engine that keeps dying
    admin = server.admin
    admin.post("/schedules", json={"id": "now", "task": "api:echo", "schedule": "manual"})
    run = admin.post("/schedules/now/run").json()
    done = finished(admin, run["id"])
    assert done["status"] == "succeeded" and done["node"] == body["node"]
    # The new engine stops with serve as the first would have.
    assert server.stop(signal.SIGTERM, timeout=20) == 0, server.output()
    assert gone(int(body["node"].split(":")[1]))
    assert "Fatal" not in server.stderr() and "while stopping" not in server.stderr()


def _started_after(admin: httpx.Client, run_id: str, asked: float) -> float:
    def started() -> float | None:
        run = admin.get(f"/runs/{run_id}").json()
        at = run.get("started_at")
        return None if at is None else datetime.fromisoformat(at).timestamp()

    at: float = wait_until("the run to start", started, 10)
    return at - asked


def test_run_now_starts_on_the_engine_process_at_once(db_url: str, serve_api: StartServer) -> None:
    server = serve_api(db_url)
    admin = server.admin
    admin.post("/schedules", json={"id": "now", "task": "api:echo", "schedule": "manual"})
    delays = []
    for _ in range(7):
        time.sleep(0.3)  # the engine idle, as when a person clicks "run now"
        asked = time.time()
        r = admin.post("/schedules/now/run")
        assert r.status_code in (200, 201, 202), r.text
        delays.append(_started_after(admin, r.json()["id"], asked))
    # A change made by the API process wakes the engine process at once (a line on its
    # stdin), not when the engine hears of the commit (the SQLite file's change counter,
    # looked at every 50 ms: a median of 40-50 ms; PostgreSQL's NOTIFY).
    bound = 0.035 if db_url.startswith("sqlite") else 0.15
    assert statistics.median(delays) < bound, delays
    assert max(delays) < 1.0, delays


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def test_api_nice_lowers_the_server_and_never_the_engine(
    sqlite_url: str, serve_api: StartServer
) -> None:
    base = _nice(os.getpid())
    server = serve_api(sqlite_url, args=("--api-nice", "5"))
    assert _nice(server.proc.pid) == base + 5  # the server's main thread, the loop's
    first = engine_pid(server)
    assert _nice(first) == base
    os.kill(first, signal.SIGKILL)
    body = wait_until(
        "a new engine",
        lambda: (
            (b := health(server).json())["engine"] == "ok"
            and b["node"].split(":")[1] != str(first)
            and b
        ),
        20,
    )
    assert _nice(int(body["node"].split(":")[1])) == base  # a restart keeps it too


def store_call_oldest(server: Server) -> float:
    return server.metric("tickwork_store_call_oldest_seconds")


def test_a_store_call_the_database_keeps_waiting_is_in_the_log_and_the_metrics(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """Another connection holds the file's write lock: the engine process's writes
    (heartbeats every second with a lease of 3 s) wait for it. Its log names the call
    while it waits and /metrics ages it; both say when it returned."""
    server = serve_api(sqlite_url, env={"TICKWORK_LEASE_TTL": "3"})
    assert store_call_oldest(server) == 0.0
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        waited = wait_until("a slow store call in /metrics", lambda: store_call_oldest(server), 8)
        assert waited >= 1.0
        wait_until("its warning", lambda: "has waited" in server.output(), 5)
        said = [line for line in server.output().splitlines() if "has waited" in line]
        assert re.search(r"store call \w+ has waited \d+\.\d s for the database", said[0]), said
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until("the calls to return", lambda: store_call_oldest(server) == 0.0, 8)
    wait_until("their return", lambda: "returned after" in server.output(), 5)
