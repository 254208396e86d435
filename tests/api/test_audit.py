"""The audit log through every door (REST API, CLI, Python), read by ``GET /audit`` and
``tickwork audit``; tokens made and revoked with ``tickwork token`` act on a running
server at once."""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
import sys
import time
from typing import Any

from tests.api.conftest import ROOT, Server, serve_env
from tickwork import Scheduler


def tickwork(db_url: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", db_url, *args],
        cwd=ROOT,
        env=serve_env({"COLUMNS": "200"}),  # a table as wide as its cells, on any terminal
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def test_every_door_is_audited(db_server: Server) -> None:
    db = db_server.db_url
    alice = db_server.client(db_server.user_token("alice"))
    assert (
        alice.post(
            "/schedules", json={"id": "a", "task": "api:echo", "schedule": "0 * * * *"}
        ).status_code
        == 201
    )
    alice.patch("/schedules/a", json={"name": "Hourly"})
    alice.post("/schedules/a/pause", json={"reason": "deploying"})
    alice.post("/schedules/a/resume")
    run = alice.post("/schedules/a/run").json()
    alice.post(
        "/schedules/a/backfill", json={"start": "2026-01-01T00:00Z", "end": "2026-01-01T02:00Z"}
    )
    tickwork(db, "update", "--id", "a", "--name", "from the CLI")

    async def from_python() -> None:
        async with Scheduler(db, engine=False) as s:
            await s.update_schedule("a", description="from Python")

    asyncio.run(from_python())
    alice.delete("/schedules/a")

    entries: list[dict[str, Any]] = db_server.admin.get(
        "/audit", params={"target": "schedule:a", "limit": 50}
    ).json()["items"]
    seen = [(e["actor"], e["action"]) for e in reversed(entries)]
    user = getpass.getuser()
    assert seen == [
        ("alice", "schedule.created"),
        ("alice", "schedule.updated"),
        ("alice", "schedule.paused"),
        ("alice", "schedule.resumed"),
        ("alice", "schedule.run"),
        ("alice", "schedule.backfilled"),
        (f"cli:{user}", "schedule.updated"),
        (f"python:{user}", "schedule.updated"),
        ("alice", "schedule.deleted"),
    ]
    by_action = {(e["actor"], e["action"]): e for e in entries}
    paused = by_action[("alice", "schedule.paused")]
    assert paused["reason"] == "deploying"
    assert paused["before"]["status"] == "active" and paused["after"]["status"] == "paused"
    updated = by_action[("alice", "schedule.updated")]
    assert updated["before"]["name"] == "" and updated["after"]["name"] == "Hourly"
    assert by_action[("alice", "schedule.run")]["after"]["runs"] == [run["id"]]
    assert len(by_action[("alice", "schedule.backfilled")]["after"]["runs"]) == 3
    assert by_action[("alice", "schedule.deleted")]["before"]["description"] == "from Python"
    # Filters and paging: newest first, a cursor continues without repeats.
    page = db_server.admin.get("/audit", params={"actor": "alice", "limit": 3}).json()
    rest = db_server.admin.get(
        "/audit", params={"actor": "alice", "limit": 50, "cursor": page["next_cursor"]}
    ).json()
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    assert {e["actor"] for e in page["items"] + rest["items"]} == {"alice"}
    # The CLI reads the same log.
    shown = tickwork(db, "audit", "--target", "a", "--limit", "3").stdout
    assert "schedule.deleted" in shown and f"python:{user}" in shown
    as_json = json.loads(tickwork(db, "--json", "audit", "--actor", "alice").stdout)
    assert [e["id"] for e in as_json] == [e["id"] for e in entries if e["actor"] == "alice"]


def test_cli_tokens_work_on_a_running_server_and_revoke_at_once(db_server: Server) -> None:
    db = db_server.db_url
    made = json.loads(tickwork(db, "--json", "token", "create", "--user", "erin").stdout)
    assert set(made) >= {"id", "token", "user", "admin"} and made["admin"] is False
    erin = db_server.client(made["token"])
    assert (
        erin.post("/schedules", json={"id": "e", "task": "api:echo", "schedule": "1h"}).json()[
            "owner"
        ]
        == "erin"
    )
    listed = tickwork(db, "token", "list").stdout
    assert made["id"] in listed and "erin" in listed and made["token"] not in listed
    ro = tickwork(db, "token", "create", "--user", "ro", "--read-only", "--expires", "1h")
    secret = ro.stdout.strip()
    assert secret.startswith("tw_") and "shown this once" in ro.stderr
    assert db_server.client(secret).post("/schedules/e/pause").status_code in (403, 404)
    tickwork(db, "token", "revoke", made["id"])
    assert erin.get("/schedules").status_code == 401
    assert "no tokens" not in tickwork(db, "token", "list").stdout
    err = tickwork(db, "token", "revoke", made["id"], expect=1).stderr
    assert "already revoked" in err
    assert (
        "--expires"
        in tickwork(db, "token", "create", "--user", "x", "--expires", "later", expect=1).stderr
    )
    actions = [e["action"] for e in json.loads(tickwork(db, "--json", "audit").stdout)]
    assert actions.count("token.created") == 2 and "token.revoked" in actions


def test_cancelling_a_run_still_stopping_again_is_not_audited_again(db_server: Server) -> None:
    """A run asked to stop, whose task has not exited yet, cancelled again: the same
    answer (200, still running, cancel requested), and one audit entry."""
    admin = db_server.admin
    body = {"id": "slow", "task": "api:slow_to_stop", "schedule": "manual"}
    assert admin.post("/schedules", json=body).status_code == 201
    run = admin.post("/schedules/slow/run", json={}).json()
    deadline = time.monotonic() + 15
    while admin.get(f"/runs/{run['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.05)
    first = admin.post(f"/runs/{run['id']}/cancel")
    again = admin.post(f"/runs/{run['id']}/cancel")
    assert first.status_code == again.status_code == 200, again.text
    for answer in (first.json(), again.json()):
        assert (answer["status"], answer["cancel_requested"]) == ("running", True)
    audited = admin.get("/audit", params={"target": f"run:{run['id']}"}).json()["items"]
    assert [e["action"] for e in audited] == ["run.cancelled"]
    while admin.get(f"/runs/{run['id']}").json()["status"] == "running":
        assert time.monotonic() < deadline + 15, "the run did not stop"
        time.sleep(0.1)
    assert admin.get(f"/runs/{run['id']}").json()["status"] == "cancelled"
