"""Each user reaches only their own schedules, runs and queue messages: another user's
answer 404 exactly as a missing one, on every route; admins see everything."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.api.conftest import Server


def _wait_done(c: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run: dict[str, Any] = c.get(f"/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def _same_as_missing(r: httpx.Response, missing: httpx.Response, ident: str, other: str) -> None:
    assert r.status_code == missing.status_code == 404, (r.text, missing.text)
    mine = r.json()["error"]
    theirs = missing.json()["error"]
    assert mine["code"] == theirs["code"] == "not_found"
    assert mine["message"].replace(ident, "X") == theirs["message"].replace(other, "X")
    assert set(mine["details"]) == set(theirs["details"])


def test_another_users_things_are_404_like_missing_ones(db_server: Server) -> None:
    alice = db_server.client(db_server.user_token("alice"))
    bob = db_server.client(db_server.user_token("bob"))
    r = alice.post(
        "/schedules",
        json={"id": "a1", "task": "api:echo", "schedule": "0 0 1 1 *", "result_queue": "shared"},
    )
    assert r.status_code == 201 and r.json()["owner"] == "alice"
    run = alice.post("/schedules/a1/run").json()
    _wait_done(alice, run["id"])
    bob.post("/schedules", json={"id": "b1", "task": "api:echo", "schedule": "0 0 1 1 *"})

    schedule_routes: list[tuple[str, str, Any]] = [
        ("GET", "/schedules/{}", None),
        ("PATCH", "/schedules/{}", {"name": "mine now"}),
        ("DELETE", "/schedules/{}", None),
        ("POST", "/schedules/{}/pause", None),
        ("POST", "/schedules/{}/resume", None),
        ("POST", "/schedules/{}/run", {"data": {}}),
        (
            "POST",
            "/schedules/{}/backfill",
            {"start": "2026-01-01T00:00Z", "end": "2026-01-01T05:00Z"},
        ),
        ("GET", "/schedules/{}/next", None),
        ("GET", "/schedules/{}/runs", None),
    ]
    for method, path, body in schedule_routes:
        theirs = bob.request(method, path.format("a1"), json=body)
        missing = bob.request(method, path.format("zz"), json=body)
        _same_as_missing(theirs, missing, "a1", "zz")
    for method, path in (("GET", "/runs/{}"), ("POST", "/runs/{}/cancel")):
        theirs = bob.request(method, path.format(run["id"]))
        missing = bob.request(method, path.format("nope-run"))
        _same_as_missing(theirs, missing, run["id"], "nope-run")
    _same_as_missing(
        bob.get("/runs", params={"schedule": "a1"}),
        bob.get("/runs", params={"schedule": "zz"}),
        "a1",
        "zz",
    )

    # Lists: bob pages through his own only, whatever the filter.
    assert [s["id"] for s in bob.get("/schedules").json()["items"]] == ["b1"]
    assert bob.get("/schedules", params={"owner": "alice"}).json()["items"] == []
    assert bob.get("/schedules", params={"q": "a1"}).json()["items"] == []
    assert bob.get("/runs").json()["items"] == []
    assert bob.get("/runs", params={"task": "api:echo"}).json()["items"] == []
    assert bob.get("/queues/shared/messages").json()["items"] == []
    assert bob.get("/stats").json()["schedules"] == {"active": 1}
    assert sum(bob.get("/stats").json()["runs"].values()) == 0
    # PUT on alice's id answers as on a missing one: with If-Match 412, as for an id
    # nobody has; without, the create it stands for meets the taken id exactly as a
    # POST of that id does (ids are shared), saying nothing of whose it is.
    body = {"task": "api:echo", "schedule": "5m"}
    for if_match in ('"1"', "*"):
        theirs = bob.put("/schedules/a1", json=body, headers={"If-Match": if_match})
        missing = bob.put("/schedules/zz", json=body, headers={"If-Match": if_match})
        assert theirs.status_code == missing.status_code == 412, (theirs.text, missing.text)
        assert theirs.json()["error"]["message"].replace("a1", "X") == missing.json()["error"][
            "message"
        ].replace("zz", "X")
    r = bob.put("/schedules/a1", json=body)
    posted = bob.post("/schedules", json={"id": "a1", **body})
    assert r.status_code == posted.status_code == 409
    assert r.json() == posted.json()
    assert "alice" not in r.text
    assert bob.get("/schedules/zz").status_code == 404  # the conditional PUTs made nothing
    # Nothing of alice's changed, and her messages are still there.
    s = alice.get("/schedules/a1").json()
    assert (s["name"], s["status"], s["owner"]) == ("", "active", "alice")
    assert len(alice.get("/runs").json()["items"]) == 1
    assert alice.get("/schedules/a1/runs").json()["items"][0]["id"] == run["id"]
    assert [m["run_id"] for m in alice.get("/queues/shared/messages").json()["items"]] == [
        run["id"]
    ]
    assert alice.get("/stats").json()["runs"]["succeeded"] == 1

    # Admin-only routes.
    for method, path in (("GET", "/audit"), ("POST", "/pause"), ("POST", "/resume")):
        assert bob.request(method, path).status_code == 403
    # Only an admin sets an owner.
    assert (
        bob.post(
            "/schedules", json={"task": "api:echo", "schedule": "1h", "owner": "alice"}
        ).status_code
        == 403
    )
    assert bob.patch("/schedules/b1", json={"owner": "alice"}).status_code == 403
    admin = db_server.admin
    r = admin.post(
        "/schedules", json={"id": "c1", "task": "api:echo", "schedule": "1h", "owner": "carol"}
    )
    assert r.status_code == 201 and r.json()["owner"] == "carol"
    assert {s["id"] for s in admin.get("/schedules").json()["items"]} == {"a1", "b1", "c1"}
    assert [
        s["id"] for s in admin.get("/schedules", params={"owner": "alice"}).json()["items"]
    ] == ["a1"]
    assert admin.get(f"/runs/{run['id']}").status_code == 200
    assert admin.post("/pause").json()["changed"] == 3
    assert admin.post("/resume").json()["changed"] == 3


def test_an_admin_finds_a_deleted_schedules_runs_by_its_id(db_server: Server) -> None:
    """Deleting a schedule keeps its history: an admin lists its runs with
    ``?schedule=`` as before, and so does its owner; an id nothing ever had is still a
    404, and so is the deleted schedule's id for another user."""
    admin = db_server.admin
    alice = db_server.client(db_server.user_token("alice"))
    bob = db_server.client(db_server.user_token("bob"))
    r = alice.post("/schedules", json={"id": "gone", "task": "api:echo", "schedule": "manual"})
    assert r.status_code == 201, r.text
    run = alice.post("/schedules/gone/run", json={}).json()
    _wait_done(alice, run["id"])
    assert alice.delete("/schedules/gone").status_code == 204
    for path, params in (("/runs", {"schedule": "gone"}), ("/schedules/gone/runs", {})):
        found = admin.get(path, params=params)
        assert found.status_code == 200, (path, found.text)
        assert [x["id"] for x in found.json()["items"]] == [run["id"]]
        filtered = admin.get(path, params={**params, "status": "failed"})
        assert filtered.status_code == 200 and filtered.json()["items"] == []
        mine = alice.get(path, params=params)
        assert mine.status_code == 200, (path, mine.text)
        assert [x["id"] for x in mine.json()["items"]] == [run["id"]]
        assert bob.get(path, params=params).status_code == 404
    never = admin.get("/runs", params={"schedule": "never-was"})
    assert never.status_code == 404 and never.json()["error"]["code"] == "not_found"


def test_a_deleted_schedules_id_is_not_another_users_to_take(db_server: Server) -> None:
    """A deleted schedule's runs, results, queue messages and audit entries are kept
    under its id, and a user sees the history of the ids they own: another user who
    made a schedule of that id would read them. Such a create (POST, PUT, the
    dashboard's form) answers 409 as a taken id; its owner may make it again, and an
    admin for anyone."""
    alice = db_server.client(db_server.user_token("alice"))
    bob = db_server.client(db_server.user_token("bob"))
    body = {"task": "api:echo", "schedule": "manual", "result_queue": "kept-q"}
    r = bob.post("/schedules", json={"id": "kept", **body, "data": {"secret": "hunter2"}})
    assert r.status_code == 201, r.text
    run = bob.post("/schedules/kept/run").json()
    _wait_done(bob, run["id"])
    assert bob.delete("/schedules/kept").status_code == 204

    mine = {"task": "api:echo", "schedule": "manual"}
    for r in (
        alice.post("/schedules", json={"id": "kept", **mine}),
        alice.put("/schedules/kept", json=mine),
    ):
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict"
        assert "bob" not in r.text and "hunter2" not in r.text
    # Nothing of bob's reaches alice.
    assert alice.get("/schedules/kept").status_code == 404
    assert alice.get(f"/runs/{run['id']}").status_code == 404
    assert alice.get("/runs", params={"schedule": "kept"}).status_code == 404
    assert alice.get("/queues/kept-q/messages").json()["items"] == []
    # An id nobody ever had is free, and bob may take his own again.
    assert alice.post("/schedules", json={"id": "fresh", **mine}).status_code == 201
    again = bob.post("/schedules", json={"id": "kept", **mine})
    assert again.status_code == 201, again.text
    assert [x["id"] for x in bob.get("/runs", params={"schedule": "kept"}).json()["items"]] == [
        run["id"]
    ]
    # Deleted again: an admin may make it for another user (as they may transfer it).
    assert bob.delete("/schedules/kept").status_code == 204
    r = db_server.admin.post("/schedules", json={"id": "kept", **mine, "owner": "alice"})
    assert r.status_code == 201, r.text


def test_the_owner_still_reads_the_runs_of_a_deleted_schedule(db_server: Server) -> None:
    """A deleted schedule's runs stay its owner's, through every read of runs, and no
    one else's but the admins': an id an admin gives to another user splits its
    history, each seeing the runs made while the schedule was theirs."""
    alice = db_server.client(db_server.user_token("alice"))
    bob = db_server.client(db_server.user_token("bob"))
    body = {"id": "shared-id", "task": "api:echo", "schedule": "manual"}
    assert alice.post("/schedules", json=body).status_code == 201
    old = _wait_done(alice, alice.post("/schedules/shared-id/run").json()["id"])
    assert alice.delete("/schedules/shared-id").status_code == 204

    def ids(c: httpx.Client, path: str, **params: str) -> list[str]:
        r = c.get(path, params=params)
        assert r.status_code == 200, (path, r.text)
        return [x["id"] for x in r.json()["items"]]

    assert ids(alice, "/runs") == [old["id"]]
    assert ids(alice, "/runs", schedule="shared-id") == [old["id"]]
    assert ids(alice, "/schedules/shared-id/runs") == [old["id"]]
    assert alice.get(f"/runs/{old['id']}").json()["status"] == "succeeded"
    assert ids(bob, "/runs") == []
    _same_as_missing(bob.get(f"/runs/{old['id']}"), bob.get("/runs/nope"), old["id"], "nope")
    assert bob.get("/runs", params={"schedule": "shared-id"}).status_code == 404
    assert bob.post(f"/runs/{old['id']}/cancel").status_code == 404

    again = db_server.admin.post("/schedules", json={**body, "owner": "bob"})
    assert again.status_code == 201, again.text
    new = _wait_done(bob, bob.post("/schedules/shared-id/run").json()["id"])
    for c, mine, theirs in ((alice, old, new), (bob, new, old)):
        assert ids(c, "/runs") == [mine["id"]]
        assert ids(c, "/runs", schedule="shared-id") == [mine["id"]]
        assert c.get(f"/runs/{theirs['id']}").status_code == 404
    assert ids(bob, "/schedules/shared-id/runs") == [new["id"]]
    assert len(ids(db_server.admin, "/runs", schedule="shared-id")) == 2


def test_the_owner_still_reads_the_queue_messages_of_a_deleted_schedule(
    db_server: Server,
) -> None:
    """A deleted schedule's unread queue messages stay its owner's, as its runs do: a
    message is the user's whose its schedule was when it was written, so an id an
    admin gives to another user keeps each owner's messages with them."""
    alice = db_server.client(db_server.user_token("alice"))
    bob = db_server.client(db_server.user_token("bob"))
    body = {"id": "queued-id", "task": "api:echo", "schedule": "manual", "result_queue": "outq"}
    assert alice.post("/schedules", json=body).status_code == 201
    old = _wait_done(alice, alice.post("/schedules/queued-id/run").json()["id"])
    assert alice.delete("/schedules/queued-id").status_code == 204

    def run_ids(c: httpx.Client, consume: bool = False) -> list[str]:
        r = c.get("/queues/outq/messages", params={"consume": str(consume).lower()})
        assert r.status_code == 200, r.text
        return [m["run_id"] for m in r.json()["items"]]

    assert run_ids(alice) == [old["id"]]
    assert run_ids(bob) == []
    again = db_server.admin.post("/schedules", json={**body, "owner": "bob"})
    assert again.status_code == 201, again.text
    new = _wait_done(bob, bob.post("/schedules/queued-id/run").json()["id"])
    assert run_ids(bob) == [new["id"]]
    assert run_ids(alice) == [old["id"]]
    assert run_ids(bob, consume=True) == [new["id"]]
    assert run_ids(alice, consume=True) == [old["id"]]
    assert run_ids(db_server.admin) == []
