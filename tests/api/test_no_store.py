"""Every ``/api/v1`` answer carries ``Cache-Control: no-store`` and
``X-Content-Type-Options: nosniff`` (``tickwork.api.no_store``): answers of the quick
reads, of the routes, errors, refusals and HEADs alike, over real HTTP."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server


def _private(r: httpx.Response) -> None:
    assert r.headers.get_list("cache-control") == ["no-store"], (r.status_code, r.headers)
    assert r.headers.get_list("x-content-type-options") == ["nosniff"], r.headers


def test_every_api_answer_says_no_store_and_nosniff(server: Server) -> None:
    c = server.admin
    created = c.post("/schedules", json={"id": "s1", "task": "api:echo", "schedule": "5m"})
    assert created.status_code == 201, created.text
    _private(created)
    raw = httpx.Client(base_url=server.api, timeout=30)
    answers = [
        c.get("/schedules/s1"),  # a quick read (before FastAPI)
        c.get("/schedules?limit=5"),  # the quick list
        c.head("/schedules/s1"),  # HEAD, as its GET
        c.get("/runs"),  # a route
        c.get("/tokens"),
        c.get("/schedules/nope"),  # 404, from the route the quick read passed it to
        c.post("/schedules", content=b"{", headers={"Content-Type": "application/json"}),
        c.get("/no-such-path"),  # FastAPI's own 404
        c.delete("/tasks"),  # 405
        raw.get("/schedules/s1"),  # 401: no token
        raw.get("/runs", headers={"Authorization": "Bearer wrong"}),
    ]
    raw.close()
    assert [r.status_code for r in answers] == [
        200,
        200,
        200,
        200,
        200,
        404,
        422,
        404,
        405,
        401,
        401,
    ]
    for r in answers:
        _private(r)
    head = answers[2]
    assert head.content == b"" and head.headers["etag"] == answers[0].headers["etag"]


def test_an_answer_over_the_body_limit_says_so_too(server: Server) -> None:
    r = server.admin.post(
        "/schedules", content=b"x" * (2 << 20), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    _private(r)


def test_pages_outside_the_api_keep_their_own_headers(server: Server) -> None:
    """``/health`` is for monitors, not a token's reads: left as it was; the dashboard
    sends the same two headers with its own."""
    with httpx.Client(base_url=server.url, timeout=30) as raw:
        health = raw.get("/health")
        login = raw.get("/login")
    assert health.status_code == 200 and "x-content-type-options" not in health.headers
    assert login.status_code == 200, login.status_code
    _private(login)
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]


def test_the_event_stream_keeps_its_own_cache_control(server: Server) -> None:
    """The feed says ``no-cache`` itself (a proxy must not buffer it): kept, with
    nosniff added."""
    with server.admin.stream("GET", "/events") as r:
        assert r.status_code == 200
        assert r.headers.get_list("cache-control") == ["no-cache"]
        assert r.headers.get_list("x-content-type-options") == ["nosniff"]
