"""A SQLite database on a disk that fills up under a running ``tickwork serve``: the
node keeps running without spinning, says why it cannot write, keeps the runs it
recorded and the ends of the attempts in flight, answers API writes 503 and reads as
usual, and goes on once space is freed.

The disk is a small tmpfs mounted for the test (root only; skipped where mounting is
not allowed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, start_server
from tests.small_disk import fill, small_disk

#: Room for the database and its WAL between two checkpoints (about 4 MB).
DISK_SIZE = "16m"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", DISK_SIZE) as where:
        yield where


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children (the engine's)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _runs(api: httpx.Client) -> list[dict[str, Any]]:
    r = api.get("/runs", params={"limit": 500})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout} s: {what}")
        time.sleep(0.2)


@pytest.mark.timeout(150)
def test_a_full_disk_pauses_the_node_until_space_is_freed(disk: Path, tmp_path: Path) -> None:
    server = start_server(f"sqlite:///{disk}/t.db", tmp_path)
    try:
        _fill_and_free(server, disk)
    finally:
        server.stop()


def _fill_and_free(server: Server, small_disk: Path) -> None:
    api = server.admin
    for sid, task, data in (("sleepy", "api:sleep", {"seconds": 1.5}), ("quick", "api:echo", {})):
        body = {"id": sid, "task": task, "schedule": "1s", "data": data}
        r = api.post("/schedules", json=body | {"overlap": "allow", "max_instances": 5})
        assert r.status_code == 201, r.text
    _until(lambda: sum(r["status"] == "succeeded" for r in _runs(api)) >= 4, 30, "runs succeeded")

    filler = small_disk / "filler"
    fill(filler)
    before = {r["id"]: r["status"] for r in _runs(api)}
    cpu_before, wall_before = _cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(6)  # the attempts under way end meanwhile

    r = api.post("/schedules", json={"task": "api:echo", "schedule": "manual"})
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "unavailable"
    assert "disk" in error["message"] and "full" in error["message"], error
    assert str(small_disk) not in error["message"]  # no path in an answer
    during = {r["id"]: r["status"] for r in _runs(api)}  # reads still work
    assert set(before) <= set(during)  # nothing recorded is lost
    busy = _cpu_seconds(server.proc.pid) - cpu_before
    assert busy < 0.5 * (time.monotonic() - wall_before), busy  # no spinning
    log = server.output()
    assert "database or disk is full" in log and "no room left" in log, log[-3000:]
    assert "cannot be stored" not in log, log[-3000:]

    filler.unlink()
    in_flight = [rid for rid, status in during.items() if status == "running"]
    _until(
        lambda: (
            api.post("/schedules", json={"task": "api:echo", "schedule": "manual"}).status_code
            == 201
        ),
        30,
        "a write accepted after space was freed",
    )

    def settled() -> dict[str, str] | None:
        now = {r["id"]: r["status"] for r in _runs(api)}
        if any(now.get(rid) == "running" for rid in in_flight):
            return None
        fresh = [rid for rid in now if rid not in during and now[rid] == "succeeded"]
        return now if len(fresh) >= 2 else None

    # The attempts that ended on the full disk are recorded as they ended, well before
    # their lease (30 s) could lapse and another look take them for lost.
    after = _until(settled, 20, "the runs in flight ended, and new ones succeeded")
    assert {after[rid] for rid in in_flight} <= {"succeeded"}, after
    statuses = set(after.values())
    assert statuses <= {"succeeded", "running", "pending", "skipped", "missed"}, statuses
