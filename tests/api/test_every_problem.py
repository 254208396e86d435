"""A refused schedule write names every field at fault in one answer over real HTTP:
``details.field`` and the message are the first, as always; ``details.problems`` lists
each, whether tickwork's checks refused it or the body's shape (FastAPI's)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Server


def _problems(r: httpx.Response) -> tuple[dict[str, Any], dict[str, str]]:
    """The error and its problems by field."""
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    problems = error["details"]["problems"]
    assert problems[0]["field"] == error["details"]["field"]
    return error, {p["field"]: p["message"] for p in problems}


def test_create_names_every_bad_field_at_once(server: Server) -> None:
    c = server.admin
    body = {
        "task": "api:report",
        "schedule": "0 0 32 * *",
        "timezone": "Mars/Olympus",
        "start_at": "2026-05-02T00:00:00Z",
        "end_at": "2026-05-01T00:00:00Z",
        "data": {"region": 1, "filters": {"ids": [1, "2"]}},
    }
    error, problems = _problems(c.post("/schedules", json=body))
    # The first problem as before: message and field unchanged.
    assert error["code"] == "invalid_schedule" and error["details"]["field"] == "timezone"
    assert error["message"] == problems["timezone"] == "unknown time zone 'Mars/Olympus'"
    assert problems == {
        "timezone": "unknown time zone 'Mars/Olympus'",
        "schedule": "day-of-month 32 out of range 1-31",
        "end_at": "end_at is before start_at",
        "data.region": "data.region must be a string, not the number 1 "
        "(task 'api:report' takes region: str)",
        "data.filters.ids[1]": "data.filters.ids[1] must be an integer, not the string '2' "
        "(task 'api:report' takes filters: dict[str, list[int]] | None)",
    }
    # PUT creates alike; one bad field is a list of one.
    put = {k: v for k, v in body.items() if k != "timezone"}
    error, problems = _problems(c.put("/schedules/p", json=put))
    assert error["details"]["field"] == "end_at" and set(problems) == {
        "schedule",
        "end_at",
        "data.region",
        "data.filters.ids[1]",
    }
    error, problems = _problems(c.post("/schedules", json={"task": "api:echo", "schedule": "5x"}))
    assert list(problems) == ["schedule"] and problems["schedule"] == error["message"]
    assert c.get("/schedules").json()["items"] == []


def test_changes_name_every_bad_field_at_once(server: Server) -> None:
    c = server.admin
    body = {"id": "r", "task": "api:report", "schedule": "0 3 * * *", "data": {"region": "eu"}}
    assert c.post("/schedules", json=body).status_code == 201
    change = {"end_at": "soon", "schedule": "0 0 30 2 *", "data": {"rows": "x"}}
    error, problems = _problems(c.patch("/schedules/r", json=change))
    assert set(problems) == {"end_at", "schedule", "data", "data.rows"}
    assert problems["data"] == "task 'api:report' needs data for 'region'"
    put = {k: v for k, v in body.items() if k != "id"} | {"overlap": "x", "timezone": "X/Y"}
    error, problems = _problems(c.put("/schedules/r", json=put))
    assert error["message"].startswith("overlap: ") and set(problems) == {"overlap", "timezone"}
    assert c.get("/schedules/r").json()["version"] == 1


def test_a_misshapen_field_and_a_wrong_value_are_named_together(server: Server) -> None:
    """The shape of a body (types, ranges, unknown fields) is checked first, by
    FastAPI; the fields it let through are checked for what they mean all the same."""
    c = server.admin
    body = {
        "task": "api:nope",
        "schedule": "0 0 32 * *",
        "overlap": "sometimes",
        "retry": {"delay": "soon"},
        "colour": "red",
        "id": "no spaces",
    }
    error, problems = _problems(c.post("/schedules", json=body))
    assert error["code"] == "validation_error" and error["message"].endswith("(and 5 more)")
    assert set(problems) == {"overlap", "retry.delay", "colour", "id", "task", "schedule"}
    assert problems["schedule"] == "day-of-month 32 out of range 1-31"
    assert problems["task"].startswith("unknown task 'api:nope'; known tasks: ")
    assert error["details"]["errors"] == error["details"]["problems"]  # the former name
    good = {"id": "x", "task": "api:echo", "schedule": "5m"}
    assert c.post("/schedules", json=good).status_code == 201
    error, problems = _problems(
        c.patch("/schedules/x", json={"priority": "high", "timezone": "X/Y", "end_at": "soon"})
    )
    assert set(problems) == {"priority", "timezone", "end_at"}
