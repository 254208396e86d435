"""A ``tickwork worker`` SIGKILLed on a SQLite file leaves, at once, every place that
lists or counts the nodes alive: ``GET /api/v1/nodes`` and ``/metrics`` of a running
``tickwork serve``, ``tickwork status``, and ``Scheduler.nodes()``. Its lease is a
minute; it used to stay listed and counted until then, or until another node marked
it stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.api.conftest import start_server
from tests.e2e.conftest import Workers, cli_status, wait_for
from tickwork import SyncScheduler

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

LEASE_TTL = "60"


def test_a_killed_worker_leaves_the_api_the_status_and_the_gauge_at_once(
    workers: Workers, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'tickwork.db'}"
    server = start_server(url, tmp_path, args=("--lease-ttl", LEASE_TTL))
    try:
        api = server.admin

        def listed() -> dict[int, str]:
            answer = api.get("/nodes")
            assert answer.status_code == 200, answer.text
            return {n["pid"]: n["id"] for n in answer.json()["items"]}

        victim = workers.start(url, "--lease-ttl", LEASE_TTL)
        wait_for(lambda: victim.proc.pid in listed() and len(listed()) == 2, 30, "both nodes")
        served = next(nid for pid, nid in listed().items() if pid != victim.proc.pid)
        assert server.metric("tickwork_nodes") == 2
        assert sorted(cli_status(url)["nodes_alive"]) == sorted(listed().values())

        victim.kill()
        killed = time.monotonic()
        assert list(listed().values()) == [served]
        assert server.metric("tickwork_nodes") == 1
        status = cli_status(url)
        assert [n["id"] for n in status["nodes"]] == [served]
        assert status["nodes_alive"] == [served]
        with SyncScheduler(url, engine=False) as client:
            assert [n.id for n in client.nodes()] == [served]
        assert time.monotonic() - killed < 10  # its lease has 50 s and more to run
    finally:
        server.stop()
