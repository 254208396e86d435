"""Odd input over real HTTP: each answers a 4xx that names what is wrong, the same on
SQLite and PostgreSQL, never a 500 (headers with digits that are not ASCII, instants at
the ends of the calendar, NUL characters in parameters and names, broken JSON)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Server


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
