"""Live events, health and metrics of a real ``tickwork serve`` process, over real HTTP.

Events come from the database's feed, so what one process does reaches another's
stream; a client that drops its connection resumes with ``Last-Event-ID``; each
caller receives only the events of what they may see.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import ROOT, Server, StartServer, metric, serve_env
from tests.going_back import go_back, keep_a_copy
from tickwork.models import Node
from tickwork.store import open_store

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Stream:
    """An open ``GET /api/v1/events`` on a socket of its own (closing it ends the read at
    once); a thread parses its messages into a queue."""

    def __init__(self, server: Server, token: str, path: str = "/events", **headers: str):
        url = httpx.URL(server.api + path)
        self.sock = socket.create_connection((url.host, url.port or 80), timeout=15)
        lines = [f"GET {url.raw_path.decode()} HTTP/1.1", f"Host: {url.host}:{url.port}"]
        lines += [f"Authorization: Bearer {token}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.content_type = self.headers.get("content-type", "")
        self.sock.settimeout(None)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()

    def _body_lines(self) -> Iterator[str]:
        """The body's lines, through the chunked transfer encoding."""
        pending = b""
        while True:
            size = int(self.file.readline().strip(), 16)
            if size == 0:
                return
            pending += self.file.read(size)
            self.file.readline()
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode().rstrip("\r")

    def _read(self) -> None:
        message: dict[str, str] = {}
        try:
            for line in self._body_lines():
                if line == "":
                    if "data" in message:
                        self.events.put(
                            {
                                "id": int(message["id"]),
                                "event": message["event"],
                                "data": json.loads(message["data"]),
                            }
                        )
                    message = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    message[name] = value.removeprefix(" ")
        except (OSError, ValueError):
            if not self._closed:
                raise

    def until(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 15
    ) -> list[dict[str, Any]]:
        """Events received up to and including the first that passes ``check``."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such event within {timeout} s; saw {seen}") from None
            seen.append(event)
            if check(event):
                return seen

    def drain(self, wait: float = 0.5) -> list[dict[str, Any]]:
        """What arrives within ``wait`` seconds."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return out

    def ended(self, timeout: float) -> bool:
        """Whether the server ended the response within ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """End the read, then close the reader and the socket: the socket's descriptor
        stays open while its file is (a warning when collected)."""
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(10)
        with contextlib.suppress(OSError):
            self.file.close()
        self.sock.close()


@contextmanager
def stream(server: Server, token: str, path: str = "/events", **headers: str) -> Iterator[Stream]:
    s = Stream(server, token, path, **headers)
    try:
        yield s
    finally:
        s.close()


def finished(run_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["data"].get("run_id") == run_id and e["event"] == "run.succeeded"


def run_now(client: httpx.Client, schedule_id: str, **headers: str) -> dict[str, Any]:
    r = client.post(f"/schedules/{schedule_id}/run", json={}, headers=headers)
    assert r.status_code == 202, r.text
    run: dict[str, Any] = r.json()
    return run


@pytest.fixture
def db_server(db_url: str, serve_api: StartServer) -> Server:
    """``tickwork serve`` on SQLite and on PostgreSQL. The database is asked for first,
    so it is dropped after the server has stopped (a running server reconnects)."""
    return serve_api(db_url)


def test_events_carry_ids_names_and_data_and_resume_after_a_dropped_connection(
    db_server: Server,
) -> None:
    admin = db_server.admin
    with stream(db_server, db_server.admin_token or "") as live:
        assert live.status == 200 and live.content_type.startswith("text/event-stream")
        assert (
            admin.post(
                "/schedules", json={"id": "e1", "task": "api:echo", "schedule": "manual"}
            ).status_code
            == 201
        )
        run = run_now(admin, "e1")
        got = live.until(finished(run["id"]))
    kinds = [e["event"] for e in got]
    assert kinds[0] == "schedule.created" and kinds[-1] == "run.succeeded"
    assert "run.started" in kinds
    ids = [e["id"] for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for e in got:
        assert e["data"]["id"] == e["id"] and e["data"]["type"] == e["event"]
        assert e["data"]["schedule_id"] == "e1"
    done = got[-1]["data"]
    assert (done["run_id"], done["status"], done["task"]) == (run["id"], "succeeded", "api:echo")
    last = got[-1]["id"]

    # While no one listens: another run, and a pause.
    missed = run_now(admin, "e1")
    deadline = time.monotonic() + 15
    while admin.get(f"/runs/{missed['id']}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.05)
    assert admin.post("/schedules/e1/pause", json={}).status_code == 200

    with stream(db_server, db_server.admin_token or "", **{"Last-Event-ID": str(last)}) as again:
        resumed = again.until(lambda e: e["event"] == "schedule.paused")
    assert all(e["id"] > last for e in resumed)
    assert [e["id"] for e in resumed] == sorted(e["id"] for e in resumed)
    assert [e["event"] for e in resumed if e["data"].get("run_id") == missed["id"]][-1] == (
        "run.succeeded"
    )
    # The same through the query string (for EventSource's first connection).
    with stream(db_server, db_server.admin_token or "", f"/events?last_event_id={last}") as q:
        assert q.until(lambda e: e["event"] == "schedule.paused")[0]["id"] == resumed[0]["id"]


def test_a_resume_point_beyond_the_newest_event_resumes_from_the_newest(
    db_server: Server,
) -> None:
    """A ``Last-Event-ID`` ahead of every event (the database was recreated since the
    client's last event) streams what comes next, not silence until the ids catch up;
    the same for ``?last_event_id=`` and the dashboard's stream (``after``)."""
    admin, token = db_server.admin, db_server.admin_token or ""
    body = {"task": "api:echo", "schedule": "manual"}
    assert admin.post("/schedules", json={"id": "before", **body}).status_code == 201
    ahead = str(10**15)
    with (
        stream(db_server, token, **{"Last-Event-ID": ahead}) as by_header,
        stream(db_server, token, f"/events?last_event_id={ahead}") as by_query,
        httpx.Client(base_url=db_server.url, timeout=10) as browser,
    ):
        assert by_header.status == by_query.status == 200
        assert browser.post("/login", data={"token": token, "next": "/"}).status_code == 303
        with browser.stream("GET", "/ui/events", params={"after": ahead}) as page:
            assert page.status_code == 200
            assert admin.post("/schedules", json={"id": "after", **body}).status_code == 201
            for got in (by_header, by_query):
                first = got.until(lambda e: e["event"] == "schedule.created", timeout=10)[0]
                assert first["event"] == "schedule.created"
                assert first["data"]["schedule_id"] == "after"
            seen = ""
            for line in page.iter_lines():  # a read timeout here: the silent stream
                seen += line + "\n"
                if line.startswith("data: ") and '"after"' in line:
                    break
        assert "schedule.created" in seen and '"before"' not in seen


def test_open_streams_go_on_when_the_database_goes_back_under_the_server(
    db_server: Server, tmp_path: Path
) -> None:
    """Restored from an older backup (SQLite) or recreated (PostgreSQL) under a running
    server, the database hands out ids its streams had passed: an open stream goes on
    with the events that come next, and so does a client reconnecting with the id of an
    event of the database as it was."""
    admin, token = db_server.admin, db_server.admin_token or ""
    body = {"task": "api:echo", "schedule": "manual"}
    assert admin.post("/schedules", json={"id": "kept", **body}).status_code == 201
    backup = tmp_path / "backup.db"
    keep_a_copy(db_server.db_url, backup)
    with stream(db_server, token) as live:
        for i in range(30):
            assert admin.post("/schedules", json={"id": f"gone{i}", **body}).status_code == 201
        high = live.until(lambda e: e["data"]["schedule_id"] == "gone29")[-1]["id"]
        go_back(db_server.db_url, backup)
        # The events committed before the server notices (within a second) are passed
        # over: make some until one arrives.
        made = 0
        deadline = time.monotonic() + 20
        while not (seen := live.drain(0.3)):
            assert time.monotonic() < deadline, "the open stream stayed silent"
            r = admin.post("/schedules", json={"id": f"new{made}", **body})
            assert r.status_code == 201, r.text
            made += 1
        assert seen[0]["id"] < high and seen[0]["data"]["schedule_id"].startswith("new")
    with stream(db_server, token, **{"Last-Event-ID": str(high)}) as again:
        assert admin.post("/schedules", json={"id": "later", **body}).status_code == 201
        first = again.until(lambda e: e["event"] == "schedule.created", timeout=10)[0]
        assert first["data"]["schedule_id"] == "later" and first["id"] < high


def test_a_malformed_last_event_id_is_a_clear_422(server: Server) -> None:
    r = server.admin.get("/events", headers={"Last-Event-ID": "yesterday"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["message"] == (
        "Last-Event-ID must be the id of an event (an integer), not 'yesterday'"
    )
    assert error["details"]["field"] == "Last-Event-ID"  # the field is named, as always
    r = server.admin.get("/events?last_event_id=-5")
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["message"] == "last_event_id must not be negative, not -5"
    assert error["details"]["field"] == "last_event_id"
    assert server.client("").get("/events").status_code == 401


def test_a_user_receives_only_the_events_of_their_own_schedules(server: Server) -> None:
    alice_token, bob_token = server.user_token("alice"), server.user_token("bob")
    alice, bob = server.client(alice_token), server.client(bob_token)
    with (
        stream(server, alice_token) as alice_live,
        stream(server, bob_token) as bob_live,
        stream(server, alice_token, "/events?schedule=b1") as alice_peeking,
        stream(server, server.admin_token or "") as admin_live,
    ):
        for client, sid in ((alice, "a1"), (bob, "b1")):
            r = client.post(
                "/schedules", json={"id": sid, "task": "api:echo", "schedule": "manual"}
            )
            assert r.status_code == 201, r.text
        a_run, b_run = run_now(alice, "a1"), run_now(bob, "b1")
        alice_saw = alice_live.until(finished(a_run["id"]))
        bob_saw = bob_live.until(finished(b_run["id"]))
        done: set[str] = set()

        def both_done(e: dict[str, Any]) -> bool:
            if e["event"] == "run.succeeded":
                done.add(e["data"]["run_id"])
            return done == {a_run["id"], b_run["id"]}

        admin_saw = admin_live.until(both_done)
        # After both runs ended, anything still in flight has arrived.
        alice_saw += alice_live.drain()
        bob_saw += bob_live.drain()
        peeked = alice_peeking.drain(1.0)
    assert {e["data"]["schedule_id"] for e in alice_saw} == {"a1"}
    assert {e["data"]["schedule_id"] for e in bob_saw} == {"b1"}
    assert {e["data"]["owner"] for e in alice_saw} == {"alice"}
    assert peeked == []  # another user's schedule: nothing, as for a missing one
    assert {e["data"]["schedule_id"] for e in admin_saw} == {"a1", "b1"}  # an admin: all


def test_the_owner_hears_how_a_run_of_a_schedule_they_deleted_ends(db_server: Server) -> None:
    """Deleting a schedule only asks its running run to stop, so the run ends after the
    schedule's row is gone: that end still reaches the owner's stream (it had no owner
    and went to admins only)."""
    token = db_server.user_token("dora")
    dora = db_server.client(token)
    made = dora.post(
        "/schedules",
        json={"id": "gone", "task": "api:sleep", "schedule": "manual", "data": {"seconds": 30}},
    )
    assert made.status_code == 201, made.text
    with stream(db_server, token) as live:
        run = run_now(dora, "gone")
        live.until(lambda e: e["event"] == "run.started" and e["data"]["run_id"] == run["id"])
        assert dora.delete("/schedules/gone").status_code == 204
        seen = live.until(
            lambda e: e["event"] == "run.cancelled" and e["data"]["run_id"] == run["id"]
        )
    assert [e["event"] for e in seen] == ["schedule.deleted", "run.cancelled"]
    assert seen[-1]["data"]["owner"] == "dora"


def test_a_stream_ends_when_its_token_is_revoked(server: Server) -> None:
    """A revoked token is refused from the next request on: an open stream, which
    makes no more requests, ends too, and carries nothing of what follows."""
    made = server.client().post("/tokens", json={"user": "carol"})
    assert made.status_code == 201, made.text
    carol = server.client(made.json()["token"])
    with stream(server, made.json()["token"]) as live:
        r = carol.post("/schedules", json={"id": "c1", "task": "api:echo", "schedule": "manual"})
        assert r.status_code == 201, r.text
        live.until(lambda e: e["event"] == "schedule.created")
        revoked = server.client().delete(f"/tokens/{made.json()['id']}")
        assert revoked.status_code == 200, revoked.text
        assert live.ended(10), "the stream went on after its token was revoked"
        server.client().post("/schedules/c1/pause", json={})
        assert live.drain(0.5) == []


@pytest.mark.postgres
def test_a_run_executed_by_one_serve_process_reaches_the_others_stream(
    pg_url: str, serve_api: StartServer
) -> None:
    first, second = serve_api(pg_url), serve_api(pg_url)
    first_node = httpx.get(f"{first.url}/health", timeout=10).json()["node"]
    second_node = httpx.get(f"{second.url}/health", timeout=10).json()["node"]
    assert first_node != second_node
    r = first.admin.post("/schedules", json={"id": "x", "task": "api:echo", "schedule": "manual"})
    assert r.status_code == 201
    with stream(second, second.admin_token or "") as live:
        nodes: set[str] = set()
        for _ in range(20):  # until the first process has executed one (it usually does)
            run = run_now(first.admin, "x")
            done = live.until(finished(run["id"]))[-1]["data"]
            nodes.add(done["node"])
            if first_node in nodes:
                break
        # Each run ran on one node or the other; the second heard of every one of them,
        # including those the first executed.
        assert first_node in nodes, f"the first process executed none of them: {nodes}"


def test_metrics_count_known_runs_and_read_gauges_from_the_database(server: Server) -> None:
    admin = server.admin
    scrape = httpx.get(f"{server.url}/metrics", timeout=10)
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    for body in (
        {"id": "ok", "task": "api:echo", "schedule": "manual"},
        {"id": "slow", "task": "api:sleep", "schedule": "manual", "timeout": 0.2,
         "retry": {"max_attempts": 1}, "data": {"seconds": 5}},
        {"id": "idle", "task": "api:echo", "schedule": "0 0 1 1 *", "paused": True},
    ):  # fmt: skip
        assert admin.post("/schedules", json=body).status_code == 201, body
    runs = [run_now(admin, "ok")["id"] for _ in range(3)] + [run_now(admin, "slow")["id"]]
    deadline = time.monotonic() + 20
    while any(admin.get(f"/runs/{r}").json()["status"] in ("pending", "running") for r in runs):
        assert time.monotonic() < deadline, "the runs did not end"
        time.sleep(0.1)

    def finished_counts(text: str) -> tuple[float, float]:
        try:
            return (
                metric(text, "tickwork_runs_finished_total", task="api:echo", status="succeeded"),
                metric(text, "tickwork_runs_finished_total", task="api:sleep", status="timed_out"),
            )
        except AssertionError:
            return (0.0, 0.0)

    deadline = time.monotonic() + 10
    while finished_counts(text := httpx.get(f"{server.url}/metrics").text) != (3.0, 1.0):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    assert metric(text, "tickwork_run_duration_seconds_count", task="api:echo") == 3
    sleep_sum = metric(text, "tickwork_run_duration_seconds_sum", task="api:sleep")
    assert 0.15 < sleep_sum < 5
    assert metric(text, "tickwork_schedules", status="active") == 2
    assert metric(text, "tickwork_schedules", status="paused") == 1
    assert metric(text, "tickwork_runs_active", state="running") == 0
    assert metric(text, "tickwork_oldest_due_run_age_seconds") == 0
    assert metric(text, "tickwork_oldest_due_fire_age_seconds") == 0
    assert metric(text, "tickwork_nodes") == 1
    assert metric(text, "tickwork_stuck_threads") == 0
    assert metric(text, "tickwork_stuck_coroutines") == 0
    assert metric(text, "tickwork_database_up") == 1
    assert metric(text, "tickwork_leader") in (0, 1)
    assert "tickwork_fire_delay_seconds_bucket" in text
    assert "tickwork_schedule_fires_total" in text or "tickwork_schedule_fires" in text


def test_metrics_count_the_attempts_retried_beside_the_runs_finished(server: Server) -> None:
    """A run whose attempts fail before one succeeds is one run finished and, for each
    attempt that failed and was followed by another, one retry: what an operator alerts
    on when tasks grow flaky, though every run ends well."""
    admin = server.admin
    body = {"id": "flaky", "task": "api:fail_once", "schedule": "manual",
            "retry": {"max_attempts": 3, "delay": 0.05, "jitter": False}}  # fmt: skip
    assert admin.post("/schedules", json=body).status_code == 201
    httpx.get(f"{server.url}/metrics", timeout=10)  # counting started before the runs
    runs = [run_now(admin, "flaky")["id"] for _ in range(2)]
    deadline = time.monotonic() + 20
    while any(admin.get(f"/runs/{r}").json()["status"] != "succeeded" for r in runs):
        assert time.monotonic() < deadline, [admin.get(f"/runs/{r}").json() for r in runs]
        time.sleep(0.1)
    assert [admin.get(f"/runs/{r}").json()["attempt"] for r in runs] == [2, 2]

    def counts(text: str) -> tuple[float, float]:
        try:
            finished = metric(
                text, "tickwork_runs_finished_total", task="api:fail_once", status="succeeded"
            )
        except AssertionError:
            return (0.0, 0.0)
        return finished, metric(text, "tickwork_run_retries_total", task="api:fail_once")

    deadline = time.monotonic() + 10
    while counts(text := httpx.get(f"{server.url}/metrics", timeout=10).text) != (2.0, 2.0):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    assert "# TYPE tickwork_run_retries_total counter" in text


def test_a_nodes_stuck_tasks_reach_its_listing_the_gauges_and_status(server: Server) -> None:
    """What a node's heartbeat wrote of the tasks it gave up on (threads, coroutines) is
    in ``GET /nodes``, in the gauges summed over the nodes alive (the server's own node
    has none), and in ``tickwork status`` through the server."""
    now = datetime.now(UTC)
    store = open_store(server.db_url)
    try:  # a node on another host, as its own heartbeat would have written it
        store.register_node(Node("vm:9:deaf", "elsewhere", 1, now, now))
        store.heartbeat(
            "vm:9:deaf", now, now + timedelta(seconds=30), [], stuck_threads=1, stuck_coroutines=2
        )
    finally:
        store.close()
    nodes = {n["id"]: n for n in server.admin.get("/nodes").json()["items"]}
    assert (nodes["vm:9:deaf"]["stuck_threads"], nodes["vm:9:deaf"]["stuck_coroutines"]) == (1, 2)
    assert all(n["stuck_coroutines"] == 0 for i, n in nodes.items() if i != "vm:9:deaf")
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert metric(text, "tickwork_stuck_threads") == 1
    assert metric(text, "tickwork_stuck_coroutines") == 2
    status = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--url", server.url,
         "--token", server.admin_token or "", "status"],
        cwd=ROOT, env=serve_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert (
        "node vm:9:deaf: 2 coroutine(s) still running an async task that ignored its "
        "cancellation (timeout, cancel request, takeover or shutdown); let the task return "
        "on asyncio.CancelledError"
    ) in status.stdout.splitlines()


def test_health_is_ok_with_the_database(server: Server) -> None:
    r = httpx.get(f"{server.url}/health", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert isinstance(body["schema_version"], int) and body["node"]
    head = httpx.head(f"{server.url}/health", timeout=10)  # load balancers send HEAD
    assert head.status_code == 200 and head.content == b""


def test_head_answers_wherever_get_does_on_the_monitoring_endpoints(server: Server) -> None:
    """Monitors probe with HEAD as often as with GET: ``/metrics`` answers it as
    ``/health`` does, with GET's status and headers and no body."""
    for path in ("/health", "/metrics"):
        get = httpx.get(f"{server.url}{path}", timeout=10)
        head = httpx.head(f"{server.url}{path}", timeout=10)
        assert (head.status_code, head.content) == (get.status_code, b""), path
        assert head.headers["content-type"] == get.headers["content-type"], path


def test_health_is_503_while_the_engine_is_alive_but_stalled(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """An engine process that lives but whose node renews no heartbeat (an async task
    blocks its event loop) fires nothing and lets its leases lapse: ``/health`` says so
    with 503 and ``"engine": "stalled"`` once a ``lease_ttl`` has passed without a
    heartbeat, and 200 again once the node beats."""
    server = serve_api(sqlite_url, env={"TICKWORK_LEASE_TTL": "1"})
    admin = server.admin
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    body = {"id": "block", "task": "api:block_loop", "schedule": "manual",
            "data": {"seconds": 4}, "retry": {"max_attempts": 1}}  # fmt: skip
    assert admin.post("/schedules", json=body).status_code == 201
    run = run_now(admin, "block")["id"]
    deadline = time.monotonic() + 10
    while (r := httpx.get(f"{server.url}/health", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "the stalled engine was never reported"
        time.sleep(0.1)
    assert r.status_code == 503
    assert r.json()["engine"] == "stalled" and r.json()["database"] == "ok", r.json()
    assert r.json()["leader"] is False
    assert metric(httpx.get(f"{server.url}/metrics", timeout=10).text, "tickwork_leader") == 0
    deadline = time.monotonic() + 20
    while (r := httpx.get(f"{server.url}/health", timeout=10)).status_code != 200:
        assert time.monotonic() < deadline, r.json()
        time.sleep(0.1)
    assert r.json()["engine"] == "ok"
    assert admin.get(f"/runs/{run}").json()["status"] != "pending"
    assert "has not renewed its heartbeat" in server.output()


@pytest.mark.postgres
def test_health_is_503_when_the_database_is_gone(pg_url: str, serve_api: StartServer) -> None:
    import psycopg

    server = serve_api(pg_url)
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    name = pg_url.rsplit("/", 1)[1]
    admin_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as pg:
        pg.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    r = httpx.get(f"{server.url}/health", timeout=15)
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    scrape = httpx.get(f"{server.url}/metrics", timeout=15)
    assert scrape.status_code == 200
    assert metric(scrape.text, "tickwork_database_up") == 0
    # Its engine process waits for the database that is gone: a SIGTERM would wait out
    # the grace and the kill of that process (some 10 s), which this test is not about.
    server.stop(signal.SIGKILL)


def test_a_traceparent_sent_with_a_run_becomes_the_runs_trace_context(server: Server) -> None:
    admin = server.admin
    assert (
        admin.post(
            "/schedules", json={"id": "t", "task": "api:echo", "schedule": "manual"}
        ).status_code
        == 201
    )
    run = run_now(admin, "t", traceparent=f"00-{TRACE}-00f067aa0ba902b7-01")
    stored = admin.get(f"/runs/{run['id']}").json()
    assert (stored["trace_id"], stored["parent_span_id"]) == (TRACE, "00f067aa0ba902b7")
    r = admin.post("/schedules/t/run", json={}, headers={"traceparent": "nonsense"})
    assert r.status_code == 422 and "traceparent" in r.json()["error"]["message"]


def test_a_traceparent_of_a_later_version_is_read_as_w3c_says(server: Server) -> None:
    """A version above 00 may add fields after the four of 00: its trace context is
    read from those four (it used to be refused with 422, the run not made); version 00
    itself has exactly four."""
    admin = server.admin
    created = admin.post("/schedules", json={"id": "v", "task": "api:echo", "schedule": "manual"})
    assert created.status_code == 201
    parent = f"{TRACE}-00f067aa0ba902b7-01"
    for later in (f"01-{parent}-what-01-adds", f"01-{parent}"):
        run = run_now(admin, "v", traceparent=later)
        stored = admin.get(f"/runs/{run['id']}").json()
        assert (stored["trace_id"], stored["parent_span_id"]) == (TRACE, "00f067aa0ba902b7")
    r = admin.post(
        "/schedules/v/run",
        json={},
        headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01-extra"},
    )
    assert r.status_code == 422 and "traceparent" in r.json()["error"]["message"]
