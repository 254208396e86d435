"""Odd input over real HTTP: each answers a 4xx that names what is wrong, the same on
SQLite and PostgreSQL, never a 500 (headers with digits that are not ASCII, instants at
the ends of the calendar, NUL characters in parameters and names, broken JSON)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.api.conftest import Server, StartServer

JWT_SECRET = "odd-input-jwt-secret-0123456789abcdef"


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


def test_if_match_with_digits_that_are_not_ascii_is_412(server: Server) -> None:
    c = server.admin
    c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "1h"})
    body = {"task": "api:echo", "schedule": "1h"}
    # "²" is a digit to str.isdigit() and not to int(): a header byte 0xB2 (latin-1).
    for if_match in (b'"\xb2"', b'"1\xb2"', b"\xb9"):
        headers = {"If-Match": if_match}
        e = _error(c.patch("/schedules/s", json={"name": "x"}, headers=headers), 412)
        assert e["code"] == "precondition_failed"
        _error(c.put("/schedules/s", json=body, headers=headers), 412)
        _error(c.delete("/schedules/s", headers=headers), 412)
    assert c.get("/schedules/s").json()["version"] == 1


@pytest.mark.parametrize(
    "instant",
    ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"],
)
def test_instants_past_the_calendar_are_422_naming_the_field(server: Server, instant: str) -> None:
    c = server.admin
    c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "0 * * * *"})
    for r, field in (
        (c.get("/runs", params={"since": instant}), "since"),
        (c.get("/runs", params={"until": instant}), "until"),
        (c.get("/audit", params={"since": instant}), "since"),
        (c.get("/schedules/s/next", params={"after": instant}), "after"),
        (
            c.post("/schedules", json={"task": "api:echo", "schedule": "1h", "start_at": instant}),
            "start_at",
        ),
        (c.post("/schedules/s/backfill", json={"start": instant, "end": instant}), "start"),
        (
            c.post("/schedules/s/backfill", json={"start": "2026-01-01T00:00:00Z", "end": instant}),
            "end",
        ),
    ):
        e = _error(r, 422)
        assert e["details"]["field"] == field and "out of range" in e["message"], e


def test_a_one_time_schedule_whose_local_time_is_past_9999_is_422(server: Server) -> None:
    c = server.admin
    for body in (
        {"schedule": "9999-12-31T23:59:59Z", "timezone": "Pacific/Kiritimati"},
        {"schedule": "0001-01-01T00:00:00Z", "timezone": "America/New_York"},
    ):
        e = _error(c.post("/validate", json=body), 422)
        assert e["details"]["field"] == "schedule" and "out of range" in e["message"]


def test_a_token_expiring_past_9999_is_422(server: Server) -> None:
    e = _error(server.admin.post("/tokens", json={"user": "u", "expires": "P9999Y"}), 422)
    assert e["details"]["field"] == "expires" and "9999" in e["message"]


def test_nul_characters_are_422_naming_the_field_on_every_database(
    db_url: str, serve_api: StartServer
) -> None:
    server = serve_api(db_url, env={"TICKWORK_JWT_SECRET": JWT_SECRET})
    c = server.admin
    c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "1h"})
    for r, field in (
        (c.get("/schedules", params={"q": "\x00"}), "q"),
        (c.get("/schedules", params={"owner": "a\x00"}), "owner"),
        (c.get("/runs", params={"task": "\x00"}), "task"),
        (c.get("/audit", params={"actor": "\x00"}), "actor"),
        (c.get("/schedules/a%00b"), "schedule_id"),
        (c.get("/schedules/a%00b/runs"), "schedule_id"),
        (c.get("/runs/%00"), "run_id"),
        (c.post("/runs/%00/cancel"), "run_id"),
        (c.get("/queues/%00/messages"), "name"),
        (c.delete("/tokens/%00"), "token_id"),
        (c.post("/tokens", json={"user": "a\x00b"}), "user"),
        (c.post("/schedules/s/pause", json={"reason": "a\x00b"}), "reason"),
        (c.post("/pause", json={"reason": "a\x00b"}), "reason"),
    ):
        e = _error(r, 422)
        assert e["details"]["field"] == field and "NUL" in e["message"], e
    assert c.get("/schedules/s").json()["paused"] is False
    # Credentials first: without one, a 401 whatever the parameters.
    _error(server.client("").get("/runs/%00"), 401)
    # A JWT whose subject no database can keep as an owner is no credential.
    forged = jwt.encode({"sub": "x\x00y"}, JWT_SECRET, algorithm="HS256")
    _error(server.client(forged).get("/schedules"), 401)
    fine = jwt.encode({"sub": "xy"}, JWT_SECRET, algorithm="HS256")
    assert server.client(fine).get("/schedules").status_code == 200


def test_time_zone_errors_name_the_timezone_field(server: Server) -> None:
    c = server.admin
    c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "1h"})
    for r in (
        c.post("/schedules", json={"task": "api:echo", "schedule": "1h", "timezone": "Mars/X"}),
        c.post("/schedules", json={"task": "api:echo", "schedule": "1h", "timezone": ""}),
        c.patch("/schedules/s", json={"timezone": None}),
        c.post("/validate", json={"schedule": "1h", "timezone": "Mars/X"}),
    ):
        e = _error(r, 422)
        assert e["code"] == "invalid_schedule" and e["details"]["field"] == "timezone", e
    e = _error(c.post("/validate", json={"schedule": "0 0 32 * *"}), 422)
    assert e["details"]["field"] == "schedule"


def test_body_errors_name_the_body_and_the_field(server: Server) -> None:
    c = server.admin
    headers = {"content-type": "application/json"}
    e = _error(c.post("/validate", content=b'{"schedule": "1h"', headers=headers), 422)
    assert e["details"]["field"] == "body" and "not valid JSON" in e["message"], e
    c.post("/schedules", json={"id": "s", "task": "api:echo", "schedule": "1h"})
    e = _error(c.post("/schedules/s/backfill", json={"start": 1, "end": "2026-01-01"}), 422)
    assert e["details"]["field"] == "start", e
    assert [p["field"] for p in e["details"]["errors"]] == ["start"]
    e = _error(c.post("/schedules", json={"task": "api:echo", "schedule": "1h", "end_at": []}), 422)
    assert e["details"]["field"] == "end_at", e


def test_a_body_the_json_parser_cannot_read_says_why(server: Server) -> None:
    """Not UTF-8, or nested past what the parser reads: the 422 says which, not only
    that the body could not be parsed."""
    c = server.admin
    headers = {"content-type": "application/json"}
    for body, expected in (
        (b'{"task": "\xff"}', "not UTF-8 text: byte 10"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 3000, "nested too deeply"),
    ):
        e = _error(c.post("/schedules", content=body, headers=headers), 422)
        assert e["details"]["field"] == "body", e
        assert expected in e["message"], (body[:20], e)


def test_a_body_that_is_not_sent_as_json_says_so(server: Server) -> None:
    c = server.admin
    body = b'{"schedule": "1h"}'
    for content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        r = c.post("/validate", content=body, headers={"content-type": content_type})
        e = _error(r, 422)
        assert e["details"]["field"] == "body", e
        assert "Content-Type: application/json" in e["message"], e
    ok = c.post("/validate", content=body, headers={"content-type": "application/json"})
    assert ok.status_code == 200, ok.text
    e = _error(c.post("/validate", json=[1]), 422)
    assert "Content-Type" not in e["message"], e
    e = _error(c.post("/validate"), 422)
    assert e["message"] == "body: Field required", e


def _cursor(kind: str, key: Any) -> str:
    """A cursor as the API makes them, around a key it never gave out."""
    raw = json.dumps([kind, key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_tampered_cursors_are_422_naming_the_cursor_on_every_database(
    db_server: Server,
) -> None:
    """A cursor holds a key: one no list gives out (an id with a NUL or a lone
    surrogate, an audit entry past the 64-bit ids) is refused alike on SQLite and
    PostgreSQL, never a 500 nor a page from a made-up position."""
    c = db_server.admin
    for sid in ("s", "t"):
        c.post("/schedules", json={"id": sid, "task": "api:echo", "schedule": "manual"})
    for path, cursor in (
        ("/schedules", _cursor("s", "a\x00b")),
        ("/schedules", _cursor("s", "\ud800")),
        ("/runs", _cursor("r", [0, "x\x00"])),
        ("/schedules/s/runs", _cursor("r", [0, "\udfff"])),
        ("/audit", _cursor("a", 2**70)),
        ("/audit", _cursor("a", 2**63)),
        ("/audit", _cursor("a", -1)),
        ("/audit", _cursor("s", "s")),  # another list's
    ):
        e = _error(c.get(path, params={"cursor": cursor}), 422)
        assert e["details"]["field"] == "cursor", (path, e)
        assert e["message"] == "cursor is not one this list gave out", (path, e)
    # JSON nested deeper than the parser goes (RecursionError, not ValueError): every
    # list refuses it alike.
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    for path in ("/schedules", "/runs", "/schedules/s/runs", "/audit", "/tasks", "/nodes",
                 "/queues/q/messages"):  # fmt: skip
        e = _error(c.get(path, params={"cursor": deep}), 422)
        assert e["message"] == "cursor is not one this list gave out", (path, e)
    # The cursors the lists give out still page on.
    page = c.get("/audit", params={"limit": 1}).json()
    assert c.get("/audit", params={"cursor": page["next_cursor"]}).status_code == 200


def test_validate_lists_a_fire_due_at_once(server: Server) -> None:
    """``now`` fires once, at once, and an interval first at its anchor (now): both are
    listed, as ``tickwork validate`` lists them, rather than nothing or the second fire."""
    c = server.admin
    before = datetime.now(UTC)
    r = c.post("/validate", json={"schedule": "now"})
    assert r.status_code == 200, r.text
    (once,) = r.json()["next"]
    r = c.post("/validate", json={"schedule": "every 1h", "count": 2})
    first, second = (datetime.fromisoformat(t) for t in r.json()["next"])
    after = datetime.now(UTC)
    assert before <= datetime.fromisoformat(once) <= after
    assert before <= first <= after and second - first == timedelta(hours=1)
