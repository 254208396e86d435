"""Schedule routes over real HTTP against ``tickwork serve``: create, read, list with
cursors, PUT upsert, PATCH, DELETE, ETag/If-Match, pause/resume, run, backfill, next."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.conftest import Server


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    error: dict[str, Any] = body["error"]
    return error


def test_create_get_and_etag(db_server: Server) -> None:
    c = db_server.admin
    r = c.post(
        "/schedules",
        json={"id": "daily", "task": "api:echo", "schedule": "0 2 * * *", "data": {"a": 1}},
    )
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["id"] == "daily" and s["owner"] == "admin" and s["status"] == "active"
    assert s["next_fire_at"] is not None and s["version"] == 1
    assert r.headers["Location"] == "/api/v1/schedules/daily"
    got = c.get("/schedules/daily")
    assert got.status_code == 200 and got.json() == s
    assert got.headers["ETag"] == '"1"'
    assert _error(c.get("/schedules/nope"), 404)["code"] == "not_found"


def test_invalid_input_names_the_field(server: Server) -> None:
    c = server.admin
    e = _error(c.post("/schedules", json={"task": "api:echo", "schedule": "0 0 32 * *"}), 422)
    assert e["details"]["field"] == "schedule" and "32" in e["message"]
    e = _error(c.post("/schedules", json={"task": "api:nope", "schedule": "5m"}), 422)
    assert e["code"] == "unknown_task" and "api:echo" in e["details"]["known"]
    e = _error(c.post("/schedules", json={"task": "api:echo"}), 422)
    assert e["details"]["field"] == "schedule"
    e = _error(c.post("/schedules", json={"task": "api:echo", "schedule": "5m", "colour": 1}), 422)
    assert e["details"]["field"] == "colour"
    e = _error(
        c.post("/schedules", json={"task": "api:report", "schedule": "5m", "data": {"x": 1}}),
        422,
    )
    assert e["details"]["field"] == "data"
    e = _error(c.post("/schedules", content=b"{not json", headers={"content-type": "x"}), 422)
    e = _error(
        c.post("/schedules", json={"task": "api:echo", "schedule": "5m", "timezone": "X/Y"}), 422
    )
    assert "X/Y" in e["message"]


def test_data_of_the_wrong_type_is_refused_naming_its_key(server: Server) -> None:
    """``api:report`` takes ``region: str`` and ``rows: int``: a string for ``rows`` is
    refused by every route that takes data, not found when the run fails."""
    c = server.admin
    body = {"id": "r", "task": "api:report", "schedule": "0 3 * * *"}
    e = _error(c.post("/schedules", json=body | {"data": {"region": "eu", "rows": "x"}}), 422)
    assert e["code"] == "validation_error" and e["details"]["field"] == "data.rows"
    assert e["message"].startswith("data.rows must be an integer, not the string 'x'")
    put = {k: v for k, v in body.items() if k != "id"} | {"data": {"region": 1}}
    e = _error(c.put("/schedules/r", json=put), 422)
    assert e["details"]["field"] == "data.region"
    assert e["message"].startswith("data.region must be a string, not the number 1")
    assert c.post("/schedules", json=body | {"data": {"region": "eu"}}).status_code == 201
    e = _error(c.patch("/schedules/r", json={"data": {"region": "eu", "rows": True}}), 422)
    assert e["details"]["field"] == "data.rows" and "not true" in e["message"]
    e = _error(c.post("/schedules/r/run", json={"data": {"rows": 2.5}}), 422)
    assert e["details"]["field"] == "data.rows" and "not the number 2.5" in e["message"]
    assert c.get("/schedules/r").json()["data"] == {"region": "eu"}
    assert c.get("/schedules/r/runs").json()["items"] == []
    tasks = {t["name"]: t for t in c.get("/tasks").json()["items"]}
    assert tasks["api:report"]["types"] == {
        "region": {"types": ["string"], "values": [], "annotation": "str"},
        "rows": {"types": ["integer"], "values": [], "annotation": "int"},
        "filters": {
            "types": ["object", "null"],
            "values": [],
            "additional_properties": {
                "types": ["array"],
                "values": [],
                "items": {"types": ["integer"], "values": []},
            },
            "annotation": "dict[str, list[int]] | None",
        },
    }
    assert tasks["api:report"]["arguments"] == ["region", "rows", "filters"]
    assert tasks["api:echo"]["types"] == {} and tasks["api:echo"]["accepts_any"] is True


def test_a_wrong_value_inside_the_data_is_refused_naming_its_path(server: Server) -> None:
    """``api:report`` takes ``filters: dict[str, list[int]] | None``: a string among the
    integers of one filter is named by its path, by every route that takes data."""
    c = server.admin
    body = {"id": "f", "task": "api:report", "schedule": "manual"}
    bad = {"region": "eu", "filters": {"ids": [1, 2, "3"]}}
    e = _error(c.post("/schedules", json=body | {"data": bad}), 422)
    assert e["code"] == "validation_error" and e["details"]["field"] == "data.filters.ids[2]"
    assert e["message"] == (
        "data.filters.ids[2] must be an integer, not the string '3' "
        "(task 'api:report' takes filters: dict[str, list[int]] | None)"
    )
    ok = {"region": "eu", "filters": {"ids": [1, 2]}}
    assert c.post("/schedules", json=body | {"data": ok}).status_code == 201
    e = _error(c.patch("/schedules/f", json={"data": {"region": "eu", "filters": {"a": 1}}}), 422)
    assert e["details"]["field"] == "data.filters.a"
    assert e["message"].startswith("data.filters.a must be an array, not the number 1")
    e = _error(c.post("/schedules/f/run", json={"data": {"filters": {"ids": [None]}}}), 422)
    assert e["details"]["field"] == "data.filters.ids[0]" and "not null" in e["message"]
    assert c.get("/schedules/f").json()["data"] == ok
    assert c.get("/schedules/f/runs").json()["items"] == []


def test_fastapi_own_errors_have_the_shape(server: Server) -> None:
    c = server.admin
    assert _error(c.get("/nowhere"), 404)["code"] == "not_found"
    assert _error(c.delete("/tasks"), 405)["code"] == "method_not_allowed"
    assert _error(c.get("/schedules", params={"limit": 0}), 422)["details"]["field"] == "limit"
    assert (
        _error(c.get("/schedules", params={"cursor": "garbage"}), 422)["details"]["field"]
        == "cursor"
    )
    assert _error(httpx.get(f"{server.url}/nowhere"), 404)["code"] == "not_found"


def test_list_filters_and_cursor_paging_while_adding(db_server: Server) -> None:
    c = db_server.admin
    for i in range(0, 30, 2):
        r = c.post("/schedules", json={"id": f"s{i:02d}", "task": "api:echo", "schedule": "1h"})
        assert r.status_code == 201
    seen: list[str] = []
    cursor = None
    added = 1
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = c.get("/schedules", params=params).json()
        seen.extend(s["id"] for s in page["items"])
        # Rows added between pages, before and after the cursor.
        c.post("/schedules", json={"id": f"s{added:02d}", "task": "api:echo", "schedule": "1h"})
        added += 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), seen
    assert set(f"s{i:02d}" for i in range(0, 30, 2)) <= set(seen)
    assert seen == sorted(seen)
    # filters
    c.post(
        "/schedules",
        json={
            "id": "tagged",
            "task": "api:sleep",
            "schedule": "1h",
            "data": {"seconds": 0},  # its run ends at once: the server stops without waiting
            "tags": ["ops"],
            "name": "Nightly Cleanup",
        },
    )
    assert [s["id"] for s in c.get("/schedules", params={"tag": "ops"}).json()["items"]] == [
        "tagged"
    ]
    assert [s["id"] for s in c.get("/schedules", params={"task": "api:sleep"}).json()["items"]] == [
        "tagged"
    ]
    assert [s["id"] for s in c.get("/schedules", params={"q": "cleanup"}).json()["items"]] == [
        "tagged"
    ]
    c.post("/schedules/tagged/pause")
    assert [s["id"] for s in c.get("/schedules", params={"status": "paused"}).json()["items"]] == [
        "tagged"
    ]


def test_put_upserts_patch_and_if_match(db_server: Server) -> None:
    c = db_server.admin
    r = c.put("/schedules/up", json={"task": "api:echo", "schedule": "5m", "name": "first"})
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == '"1"'
    r = c.put("/schedules/up", json={"task": "api:echo", "schedule": "10m"})
    assert r.status_code == 200 and r.json()["schedule"] == "10m"
    assert r.json()["name"] == ""  # PUT replaces: a field left out is back to its default
    assert r.headers["ETag"] == '"2"'
    # A lost update: a PATCH with the old ETag is refused and changes nothing.
    stale = '"1"'
    e = _error(c.patch("/schedules/up", json={"name": "x"}, headers={"If-Match": stale}), 412)
    assert e["code"] == "precondition_failed"
    r = c.patch("/schedules/up", json={"name": "second"}, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["name"] == "second"
    assert r.headers["ETag"] == '"3"'
    _error(
        c.put(
            "/schedules/up",
            json={"task": "api:echo", "schedule": "1m"},
            headers={"If-Match": '"2"'},
        ),
        412,
    )
    _error(c.delete("/schedules/up", headers={"If-Match": '"2"'}), 412)
    _error(
        c.put(
            "/schedules/new", json={"task": "api:echo", "schedule": "1m"}, headers={"If-Match": "*"}
        ),
        412,
    )
    assert c.get("/schedules/up").json()["name"] == "second"
    assert c.delete("/schedules/up", headers={"If-Match": '"3"'}).status_code == 204
    _error(c.get("/schedules/up"), 404)
    _error(c.delete("/schedules/up"), 404)


def test_if_match_takes_a_list_and_compares_strongly(db_server: Server) -> None:
    """RFC 9110: If-Match holds when any entity-tag of its list matches the ETag by
    strong comparison; a weak one never does; ``*`` matches any current schedule."""
    c = db_server.admin
    assert c.put("/schedules/m", json={"task": "api:echo", "schedule": "5m"}).status_code == 201

    def patch(if_match: str, name: str) -> httpx.Response:
        return c.patch("/schedules/m", json={"name": name}, headers={"If-Match": if_match})

    r = patch('"1", "99"', "listed")
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"' and r.json()["name"] == "listed"
    assert patch('"99","2"', "second in the list").status_code == 200
    e = _error(patch('"1", "2"', "stale list"), 412)
    assert "version 3" in e["message"]
    e = _error(patch('W/"3"', "weak"), 412)  # weak: never matches, even the current one
    assert "weak" in e["message"] and '"3"' in e["message"]
    assert "changed since it was read" not in e["message"]  # no version was named
    e = _error(patch('"3', "broken"), 412)
    assert "closing quote" in e["message"]
    assert "changed since it was read" not in e["message"]
    e = _error(patch('"2", W/"3"', "stale beside weak"), 412)
    assert "changed since it was read" in e["message"] and "weak" in e["message"]
    assert patch('W/"3", "3"', "strong beside weak").status_code == 200
    assert patch("*", "any").json()["version"] == 5
    put = c.put(
        "/schedules/m",
        json={"task": "api:echo", "schedule": "1m"},
        headers={"If-Match": '"4", "5"'},
    )
    assert put.status_code == 200 and put.headers["ETag"] == '"6"', put.text
    _error(c.put("/schedules/m", json={"task": "api:echo", "schedule": "2m"},
                 headers={"If-Match": 'W/"6"'}), 412)  # fmt: skip
    _error(c.delete("/schedules/m", headers={"If-Match": 'W/"6"'}), 412)
    _error(c.delete("/schedules/m", headers={"If-Match": '"5", "7"'}), 412)
    got = c.get("/schedules/m").json()
    assert (got["version"], got["schedule"], got["name"]) == (6, "1m", "")
    assert c.delete("/schedules/m", headers={"If-Match": '"5", "6"'}).status_code == 204
    # Gone: a condition on a missing schedule is its 404, as without the condition.
    _error(c.patch("/schedules/m", json={"name": "x"}, headers={"If-Match": '"6"'}), 404)
    _error(c.delete("/schedules/m", headers={"If-Match": "*"}), 404)


def test_if_match_is_honoured_by_pause_resume_run_and_backfill(db_server: Server) -> None:
    """Every route that acts on one schedule takes If-Match as PATCH does: a stale ETag
    is a 412 that changes, runs and records nothing; a matching one goes through. The
    routes that act on every schedule refuse it (412), rather than ignore it."""
    c = db_server.admin
    body = {"task": "api:echo", "schedule": "0 3 * * *", "timezone": "UTC"}
    assert c.put("/schedules/cond", json=body).status_code == 201
    stale, current = '"0"', '"1"'
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T23:59:59Z"}
    refused = {
        "pause": c.post("/schedules/cond/pause", json={}, headers={"If-Match": stale}),
        "resume": c.post("/schedules/cond/resume", json={}, headers={"If-Match": stale}),
        "run": c.post("/schedules/cond/run", json={}, headers={"If-Match": stale}),
        "backfill": c.post("/schedules/cond/backfill", json=window, headers={"If-Match": stale}),
        "weak": c.post("/schedules/cond/pause", json={}, headers={"If-Match": 'W/"1"'}),
    }
    for what, r in refused.items():
        e = _error(r, 412)
        assert e["code"] == "precondition_failed", what
        assert "version 1" in e["message"], (what, e)
    got = c.get("/schedules/cond")
    assert (got.json()["status"], got.headers["ETag"]) == ("active", current)
    assert c.get("/schedules/cond/runs").json()["items"] == []
    audited = c.get("/audit", params={"target": "schedule:cond"}).json()["items"]
    assert [e["action"] for e in audited] == ["schedule.created"]

    paused = c.post("/schedules/cond/pause", json={}, headers={"If-Match": current})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.headers["ETag"] == '"2"'
    _error(c.post("/schedules/cond/resume", json={}, headers={"If-Match": current}), 412)
    resumed = c.post("/schedules/cond/resume", json={}, headers={"If-Match": '"1", "2"'})
    assert resumed.status_code == 200 and resumed.headers["ETag"] == '"3"'
    run = c.post("/schedules/cond/run", json={}, headers={"If-Match": '"3"'})
    assert run.status_code == 202 and run.json()["schedule_version"] == 3
    filled = c.post("/schedules/cond/backfill", json=window, headers={"If-Match": "*"})
    assert filled.status_code == 200 and filled.json()["created"] == 2
    assert c.get("/schedules/cond").headers["ETag"] == '"3"'  # runs change no setting
    # On every schedule at once there is no ETag to match: refused, nothing paused.
    for path in ("/pause", "/resume"):
        e = _error(c.post(path, json={}, headers={"If-Match": "*"}), 412)
        assert "one schedule" in e["message"]
    assert c.get("/schedules/cond").json()["status"] == "active"
    # Who may ask is answered first: a user's If-Match on /pause is a 403, as without it.
    bob = db_server.client(db_server.user_token("bob"))
    assert _error(bob.post("/pause", json={}, headers={"If-Match": "*"}), 403)
    # A condition on another user's schedule is its 404, as without the condition.
    _error(bob.post("/schedules/cond/pause", json={}, headers={"If-Match": '"3"'}), 404)


def test_if_match_lets_one_of_concurrent_changes_from_one_version_through(
    db_server: Server,
) -> None:
    c = db_server.admin
    assert c.put("/schedules/race", json={"task": "api:echo", "schedule": "5m"}).status_code == 201

    def patch(i: int) -> int:
        with db_server.client() as own:
            r = own.patch(
                "/schedules/race", json={"name": f"n{i}"}, headers={"If-Match": '"1", "99"'}
            )
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(patch, range(8)))
    assert codes == [200] + [412] * 7, codes
    assert c.get("/schedules/race").json()["version"] == 2


def test_a_schedule_always_has_an_owner(db_server: Server) -> None:
    """Only an admin gives a schedule to another user, and only to a user: a null or
    blank owner, which would leave it to no one, is refused as on creation."""
    c = db_server.admin
    alice = db_server.client(db_server.user_token("alice"))
    body = {"task": "api:echo", "schedule": "1h"}
    assert alice.post("/schedules", json={"id": "mine", **body}).status_code == 201
    for owner in (None, "", "   "):
        e = _error(c.patch("/schedules/mine", json={"owner": owner}), 422)
        assert e["details"]["field"] == "owner" and "user name" in e["message"], e
        if owner is not None:  # PUT: a null owner is one left out, which keeps it
            e = _error(c.put("/schedules/mine", json={**body, "owner": owner}), 422)
            assert e["details"]["field"] == "owner", e
        e = _error(c.post("/schedules", json={**body, "owner": owner or " "}), 422)
        assert e["details"]["field"] == "owner", e
    assert c.put("/schedules/mine", json={**body, "owner": None}).json()["owner"] == "alice"
    assert alice.get("/schedules/mine").json()["owner"] == "alice"
    _error(alice.patch("/schedules/mine", json={"owner": None}), 403)
    assert c.patch("/schedules/mine", json={"owner": "bob"}).json()["owner"] == "bob"


def test_pause_resume_next_run_backfill(db_server: Server) -> None:
    c = db_server.admin
    c.post("/schedules", json={"id": "m", "task": "api:echo", "schedule": "0 * * * *"})
    nxt = c.get("/schedules/m/next", params={"count": 3}).json()
    assert len(nxt["next"]) == 3
    r = c.post("/schedules/m/pause", json={"reason": "maintenance"})
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert c.get("/schedules/m/next").json()["next"] == []
    assert c.post("/schedules/m/resume").json()["status"] == "active"
    r = c.post("/schedules/m/run", json={"data": {"extra": 2}})
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["trigger"] == "manual" and run["data"] == {"extra": 2}
    assert run["schedule_version"] == c.get("/schedules/m").json()["version"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = c.get(f"/runs/{run['id']}").json()
        if got["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert got["status"] == "succeeded", got
    assert got["result"]["data"] == {"extra": 2}
    assert got["logs"] and "echo" in got["logs"][0]["message"]
    r = c.post(
        "/schedules/m/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"},
    )
    assert r.status_code == 200 and r.json()["created"] == 4
    again = c.post(
        "/schedules/m/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"},
    )
    assert again.json()["created"] == 0
    runs = c.get("/schedules/m/runs", params={"limit": 500}).json()["items"]
    assert {r["trigger"] for r in runs} == {"manual", "backfill"}
    assert (
        _error(c.post("/schedules/m/backfill", json={"start": "x", "end": "y"}), 422)["details"][
            "field"
        ]
        == "start"
    )


def test_a_backfill_of_a_manual_schedule_is_a_conflict_that_says_why(server: Server) -> None:
    """The request is well formed, but a manual schedule has no fire times: 409, as for
    any action the schedule's state rules out, with a message that says what to do
    instead, and no run made."""
    c = server.admin
    c.post("/schedules", json={"id": "by-hand", "task": "api:echo", "schedule": "manual"})
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    error = _error(c.post("/schedules/by-hand/backfill", json=window), 409)
    assert error["code"] == "conflict"
    assert error["message"] == (
        "schedule 'by-hand' is manual: it has no fire times to backfill (run it now instead)"
    )
    assert c.get("/schedules/by-hand/runs").json()["items"] == []


def test_head_answers_as_get_does_wherever_get_is_served(server: Server) -> None:
    """HEAD gets GET's status and headers (an ETag to compare, a Content-Length)
    without the body, on the API, the dashboard and the documents; a path with no GET
    answers 405, and so does an event stream, whose GET never ends."""
    c = server.admin
    c.post("/schedules", json={"id": "h", "task": "api:echo", "schedule": "manual"})
    auth = {"Authorization": f"Bearer {server.admin_token}"}
    for path in ("/api/v1/schedules/h", "/api/v1/schedules", "/api/v1/runs", "/api/v1/stats",
                 "/api/v1/schedules/nope", "/login", "/openapi.json", "/docs"):  # fmt: skip
        get = httpx.get(f"{server.url}{path}", headers=auth, timeout=10)
        head = httpx.head(f"{server.url}{path}", headers=auth, timeout=10)
        assert (head.status_code, head.content) == (get.status_code, b""), path
        for name in ("content-type", "content-length", "etag"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
    for path, allow in (("/api/v1/schedules/h/run", "POST"), ("/api/v1/events", "GET")):
        head = httpx.head(f"{server.url}{path}", headers=auth, timeout=10)
        assert (head.status_code, head.headers["allow"]) == (405, allow), path


def test_concurrent_unconditional_changes_all_apply(db_server: Server) -> None:
    """PUT and PATCH without If-Match never answer 412, however many race: each is
    applied over whatever version it meets (the last one wins)."""
    n = 8
    body = {"task": "api:echo", "schedule": "1h"}

    def put(i: int) -> int:
        with httpx.Client(base_url=db_server.api, headers=db_server.admin.headers) as c:
            return c.put("/schedules/raced", json={**body, "name": f"p{i}"}).status_code

    def patch(i: int) -> int:
        with httpx.Client(base_url=db_server.api, headers=db_server.admin.headers) as c:
            return c.patch("/schedules/raced", json={"description": f"d{i}"}).status_code

    with ThreadPoolExecutor(n) as pool:
        puts = sorted(pool.map(put, range(n)))
        assert puts == [200] * (n - 1) + [201], puts
        patches = list(pool.map(patch, range(n)))
        assert patches == [200] * n, patches
    s = db_server.admin.get("/schedules/raced").json()
    assert s["version"] == 2 * n and s["description"] in {f"d{i}" for i in range(n)}


def test_a_large_float_in_data_comes_back_a_float_on_either_database(db_server: Server) -> None:
    """``1e20`` in a schedule's data is the same JSON value from SQLite and PostgreSQL
    (PostgreSQL gave back ``100000000000000000000``: an int, and one too large for the
    API, which then refused a run with extra data), and so is what the task receives."""
    c = db_server.admin
    data = {"big": 1e20, "huge": -1.5e300, "int": 2**63 - 1, "small": 1e-7}
    r = c.post("/schedules", json={"id": "f", "task": "api:echo", "schedule": "manual",
                                   "data": data})  # fmt: skip
    assert r.status_code == 201, r.text
    for body in (r.json(), c.get("/schedules/f").json()):
        assert body["data"] == data
        assert {k: type(v) for k, v in body["data"].items()} == {
            k: type(v) for k, v in data.items()
        }
    r = c.post("/schedules/f/run", json={"data": {"extra": 1}})
    assert r.status_code == 202, r.text
    run = r.json()
    deadline = time.monotonic() + 15
    while (got := c.get(f"/runs/{run['id']}").json())["status"] != "succeeded":
        assert time.monotonic() < deadline, got
        time.sleep(0.05)
    assert got["result"]["data"] == {**data, "extra": 1}
    assert type(got["result"]["data"]["big"]) is float


def test_put_again_changes_nothing_and_keeps_the_interval(server: Server) -> None:
    """PUT is idempotent: the same body again is no change (same version, no audit
    entry), and a PUT that changes a field other than the timing ones does not restart
    an interval from now (a deploy that PUTs its schedules would else postpone them)."""
    c = server.admin
    body = {"task": "api:echo", "schedule": "every 1h", "tags": ["a"], "data": {"x": 1}}
    first = c.put("/schedules/again", json=body)
    assert first.status_code == 201, first.text
    deadline = time.monotonic() + 10
    while (before := c.get("/schedules/again").json())["last_fire_at"] is None:
        assert time.monotonic() < deadline, before  # its first fire is at once
        time.sleep(0.02)
    same = c.put("/schedules/again", json=body)
    assert same.status_code == 200, same.text
    assert same.headers["ETag"] == '"1"' and same.json() == before
    renamed = c.put("/schedules/again", json={**body, "name": "hourly"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "hourly"
    assert renamed.headers["ETag"] == '"2"'
    for key in ("anchor", "next_fire_at"):
        assert renamed.json()[key] == before[key], key
    audit = c.get("/audit", params={"target": "schedule:again"}).json()["items"]
    assert [e["action"] for e in audit] == ["schedule.updated", "schedule.created"]


def test_put_again_keeps_the_timeout_and_retries_the_task_declares(server: Server) -> None:
    """Fields a PUT leaves out go back to what a new schedule of that task gets: the
    task's own timeout and retries (``@task(timeout=..., retries=...)``), not the node's
    defaults, so the same body again changes neither."""
    c = server.admin
    body = {"task": "api:careful", "schedule": "manual"}
    made = c.put("/schedules/careful", json=body)
    assert made.status_code == 201, made.text
    assert (made.json()["timeout"], made.json()["retry"]["max_attempts"]) == (45.0, 5)
    again = c.put("/schedules/careful", json=body)
    assert again.status_code == 200 and again.headers["ETag"] == '"1"', again.text
    assert again.json() == made.json()
    # A PUT that gives them changes them; one that leaves them out again restores the task's.
    mine = c.put("/schedules/careful", json={**body, "timeout": 9, "retry": {"max_attempts": 2}})
    assert (mine.json()["timeout"], mine.json()["retry"]["max_attempts"]) == (9.0, 2)
    back = c.put("/schedules/careful", json=body).json()
    assert (back["timeout"], back["retry"], back["node_defaults"]) == (
        made.json()["timeout"],
        made.json()["retry"],
        made.json()["node_defaults"],
    )
    # null is a field left out, in a PUT as in a create.
    c.put("/schedules/careful", json={**body, "timeout": 9, "retry": {"max_attempts": 2}})
    nulls = c.put("/schedules/careful", json={**body, "timeout": None, "retry": None}).json()
    created = c.post("/schedules", json={**body, "id": "careful-new", "timeout": None}).json()
    assert (nulls["timeout"], nulls["retry"]) == (created["timeout"], created["retry"])
    assert (nulls["timeout"], nulls["retry"]["max_attempts"]) == (45.0, 5)


def test_put_replaces_the_whole_retry_policy(server: Server) -> None:
    """A PUT's ``retry`` is the whole policy, as in a create: the keys it leaves out take
    their defaults, not the values the schedule had before."""
    c = server.admin
    body = {"task": "api:echo", "schedule": "manual"}
    first = c.put("/schedules/rp", json={**body, "retry": {"max_attempts": 7, "backoff": 3}})
    assert first.status_code == 201, first.text
    created = c.post("/schedules", json={**body, "id": "rp-new", "retry": {"delay": 10}})
    assert created.status_code == 201, created.text
    put = c.put("/schedules/rp", json={**body, "retry": {"delay": 10}})
    assert put.status_code == 200, put.text
    assert put.json()["retry"] == created.json()["retry"]
    assert put.json()["retry"]["max_attempts"] == 3 and put.json()["retry"]["backoff"] == 2
