"""A query parameter an endpoint does not take is refused, naming it: a typo in a filter
must not answer as if no filter had been asked for."""

from __future__ import annotations

from tests.api.conftest import Server


def test_a_misspelt_filter_is_refused_with_the_parameters_the_endpoint_takes(
    server: Server,
) -> None:
    """Before: ``/runs?staus=failed`` answered every run, the succeeded ones too."""
    c = server.admin
    assert c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "manual"})
    assert c.post("/schedules/s/run").status_code in (200, 201, 202)
    r = c.get("/runs?staus=failed")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == "staus"
    assert error["message"] == (
        "unknown query parameter 'staus': GET /api/v1/runs takes cursor, limit, schedule, "
        "since, status, task, until"
    )
    assert c.get("/runs?status=failed").json()["items"] == []  # spelt right: a filter


def test_every_kind_of_endpoint_refuses_what_it_does_not_take(server: Server) -> None:
    c = server.admin
    assert c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "5m"})
    for method, path, unknown in (
        ("GET", "/schedules?colour=red&limit=5", "'colour'"),
        ("GET", "/schedules/s?verbose=1", "'verbose'"),
        ("POST", "/schedules/s/pause?all=1", "'all'"),
        ("GET", "/tasks?x=1&y=2", "'x', 'y'"),
        ("GET", "/audit?who=me", "'who'"),
    ):
        r = c.request(method, path)
        assert r.status_code == 422, (path, r.text)
        assert unknown in r.json()["error"]["message"], r.text
    assert "takes no query parameter" in c.get("/stats?x=1").json()["error"]["message"]
    # Nothing was done by the refused requests.
    assert c.get("/schedules/s").json()["paused"] is False


def test_a_caller_without_a_credential_hears_that_first(server: Server) -> None:
    r = server.client("").get("/runs?staus=failed")
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"


def test_an_empty_filter_is_refused_naming_it(server: Server) -> None:
    """``?task=`` matched no item (no task is named ''): a list that answered empty for
    a filter left blank, where the user meant no filter or forgot the value."""
    c = server.admin
    assert c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "5m"})
    for path, name in (
        ("/schedules?task=", "task"),
        ("/schedules?tag=", "tag"),
        ("/schedules?owner=", "owner"),
        ("/runs?task=", "task"),
        ("/audit?actor=", "actor"),
        ("/audit?target=", "target"),
    ):
        r = c.get(path)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["details"]["field"] == name, r.text
    assert [s["id"] for s in c.get("/schedules?task=api:echo").json()["items"]] == ["s"]


def test_a_filter_given_twice_is_refused_naming_it(server: Server) -> None:
    """Before: ``?status=failed&status=succeeded`` answered the succeeded runs alone, as
    if the failed ones had not been asked for."""
    c = server.admin
    assert c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "manual"})
    assert c.post("/schedules/s/run").status_code in (200, 201, 202)
    for path, name, times in (
        ("/runs?status=failed&status=succeeded", "status", 2),
        ("/schedules?task=a&task=api:echo&task=b", "task", 3),  # the quick read's path
        ("/schedules?limit=1&limit=2", "limit", 2),
        ("/schedules/s/next?count=1&count=2", "count", 2),
    ):
        r = c.get(path)
        assert r.status_code == 422, (path, r.text)
        error = r.json()["error"]
        assert error["details"]["field"] == name
        route = path.split("?")[0]
        assert error["message"] == (
            f"query parameter {name!r} is given {times} times: GET /api/v1{route} takes one"
            " value for it"
        )
    assert c.get("/runs?status=succeeded&limit=5").status_code == 200  # each once: fine
    # Without a credential, that comes first.
    assert server.client("").get("/runs?status=a&status=b").status_code == 401
