"""Limits and the server's life: 429 with Retry-After per token, 413, CORS, idempotent
runs, 127.0.0.1 by default, SIGTERM that lets a running run finish."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import httpx
import jwt

from tests.api.conftest import Server, StartServer, serve_refusal
from tickwork import Scheduler


def test_rate_limit_is_per_token_with_retry_after(sqlite_url: str, serve_api: StartServer) -> None:
    # 12 a minute: the bucket takes one more every 5 s, so the wait below is at most
    # that, and the 15 requests of the burst are sent long before a refill.
    limit = 12
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": str(limit)})
    admin = server.admin
    token = server.user_token("alice")  # the admin's 1st request
    alice = server.client(token)
    codes = [alice.get("/schedules").status_code for _ in range(limit + 2)]
    assert codes[:limit] == [200] * limit and codes[limit:] == [429, 429], codes
    r = alice.get("/schedules")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60 // limit
    # Another credential has its own budget.
    assert admin.get("/schedules").status_code == 200
    time.sleep(int(r.headers["Retry-After"]))
    assert alice.get("/schedules").status_code == 200


def test_made_up_credentials_count_against_the_address(
    sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "5"})
    # The admin token is checked before it is counted: its own budget, not the address's.
    alice = server.client(server.user_token("alice"))
    assert alice.get("/schedules").status_code == 200  # alice's 1st: the address's 1st
    # A different made-up token each time: each a new credential, but not one known to
    # be valid, so all count against the address (4 left of 5).
    codes = [server.client(f"made-up-{i}").get("/schedules").status_code for i in range(6)]
    assert codes == [401] * 4 + [429] * 2, codes
    assert server.client("").get("/schedules").status_code == 429
    # A credential known to be valid keeps its own budget.
    assert alice.get("/schedules").status_code == 200


def test_made_up_credentials_earn_no_budget_on_pages_open_to_all(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """A page that reads no credential (the sign-in page, the schema) answers a made-up
    one with 200: that proves nothing of it, so it still counts against the address.
    (It earned a budget of its own: one request of the address's bought a minute's
    worth with each new made-up credential.)"""
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "4"})
    codes = [
        httpx.get(
            f"{server.url}{path}", headers={"Authorization": f"Bearer made-up-{i}"}
        ).status_code
        for i in range(4)
        for path in ("/login", "/openapi.json")
    ]
    assert codes == [200] * 4 + [429] * 4, codes


def test_a_credential_checked_without_the_database_is_never_locked_out(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """Someone else's bad attempts from the same address (behind one proxy, all
    clients have its address) spend the address's budget; TICKWORK_ADMIN_TOKEN and a
    JWT are checked before any count, without the database, so their first request is
    not refused with them. (It was: refused before it was checked, it could never
    prove itself while the bad attempts went on.)"""
    secret = "a-jwt-secret-of-32-bytes-or-more!!"
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "3", "TICKWORK_JWT_SECRET": secret})
    codes = [server.client(f"made-up-{i}").get("/schedules").status_code for i in range(4)]
    assert codes == [401] * 3 + [429], codes
    assert server.client("made-up-again").get("/schedules").status_code == 429
    assert server.admin.get("/schedules").status_code == 200
    carol = jwt.encode({"sub": "carol", "exp": int(time.time()) + 600}, secret, "HS256")
    assert server.client(carol).get("/schedules").status_code == 200
    # A JWT signed with another key is as made up as any.
    forged = jwt.encode({"sub": "carol"}, "another-secret-of-32-bytes-or-more", "HS256")
    assert server.client(forged).get("/schedules").status_code == 429


def test_a_dashboard_session_found_valid_keeps_its_own_budget(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """The dashboard's check of a session cookie proves it as the API's check proves a
    token: once a page found it valid, it no longer counts against the address."""
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "3"})
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        signed_in = browser.post("/login", data={"token": server.admin_token, "next": "/"})
        assert signed_in.status_code == 303, signed_in.text  # the address's 1st
        assert browser.get("/schedules").status_code == 200  # unproven: the address's 2nd
        codes = [server.client(f"made-up-{i}").get("/schedules").status_code for i in range(2)]
        assert codes == [401, 429], codes
        assert browser.get("/schedules").status_code == 200
        # A made-up session cookie is checked too, and found wanting: the address's.
        assert (
            httpx.get(f"{server.url}/schedules", cookies={"tickwork_session": "made-up"})
        ).status_code == 429


def test_bodies_over_the_limit_are_413(sqlite_url: str, serve_api: StartServer) -> None:
    server = serve_api(sqlite_url, env={"TICKWORK_MAX_BODY": "2000"})
    admin = server.admin
    big = {"task": "api:echo", "schedule": "1h", "data": {"blob": "x" * 3000}}
    r = admin.post("/schedules", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"task": "api:echo", "schedule": "1h", "data": {"blob": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}}'

    r = admin.post("/schedules", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    small = {"task": "api:echo", "schedule": "1h", "data": {"blob": "x" * 100}}
    assert admin.post("/schedules", json=small).status_code == 201


def test_cors_only_for_the_configured_origins(sqlite_url: str, serve_api: StartServer) -> None:
    server = serve_api(sqlite_url, env={"TICKWORK_CORS_ORIGINS": "https://ops.example"})
    pre = httpx.options(
        f"{server.api}/schedules",
        headers={
            "Origin": "https://ops.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://ops.example"
    r = server.client(headers={"Origin": "https://evil.example"}).get("/schedules")
    assert "access-control-allow-origin" not in r.headers
    r = server.client(headers={"Origin": "https://ops.example"}).get("/schedules")
    assert r.headers["access-control-allow-origin"] == "https://ops.example"
    assert "ETag" in r.headers["access-control-expose-headers"]


def test_cors_lets_a_browser_send_every_header_the_api_reads(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """A browser asks before sending a header that is not simple: each the API reads
    (Last-Event-ID to resume events, traceparent to join a trace...) must be allowed."""
    server = serve_api(sqlite_url, env={"TICKWORK_CORS_ORIGINS": "https://ops.example"})
    for path, method, headers in (
        ("/events", "GET", "authorization,last-event-id"),
        ("/schedules/s/run", "POST", "authorization,content-type,idempotency-key,traceparent"),
        ("/schedules/s", "PATCH", "authorization,content-type,if-match"),
    ):
        pre = httpx.options(
            f"{server.api}{path}",
            headers={
                "Origin": "https://ops.example",
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )
        assert pre.status_code == 200, (path, pre.text)
        allowed = pre.headers["access-control-allow-headers"].lower()
        assert all(h in allowed for h in headers.split(",")), (path, allowed)


def test_a_cors_origin_no_browser_sends_is_refused(sqlite_url: str) -> None:
    """A browser's Origin is scheme://host[:port], lowercase, with no path: an entry
    written otherwise (no scheme, a trailing slash) would match no request, and CORS
    would silently stay off for the site it was meant for."""
    for origin, said in (
        ("ops.example", "no scheme"),
        ("https://ops.example/", "no path"),
        ("https://OPS.example", "lowercase"),
        ("https://ops.example, *", "'*' (any origin) stands alone"),
    ):
        stderr = serve_refusal(sqlite_url, "--cors-origins", f"https://fine.example:8443,{origin}")
        assert "cors_origins" in stderr and said in stderr, (origin, stderr)


def test_without_cors_setting_no_cors_headers(server: Server) -> None:
    r = server.client(headers={"Origin": "https://ops.example"}).get("/schedules")
    assert "access-control-allow-origin" not in r.headers


def test_an_idempotency_key_returns_the_same_run(db_server: Server) -> None:
    alice = db_server.client(db_server.user_token("alice"))
    bob = db_server.client(db_server.user_token("bob"))
    alice.post("/schedules", json={"id": "m", "task": "api:echo", "schedule": "manual"})
    alice.post("/schedules", json={"id": "n", "task": "api:echo", "schedule": "manual"})
    bob.post("/schedules", json={"id": "o", "task": "api:echo", "schedule": "manual"})
    key = {"Idempotency-Key": "order-42"}
    first = alice.post("/schedules/m/run", json={"data": {"x": 1}}, headers=key)
    again = alice.post("/schedules/m/run", json={"data": {"x": 1}}, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = alice.post("/schedules/m/run", headers={"Idempotency-Key": "order-43"})
    assert other.json()["id"] != first.json()["id"]
    assert alice.post("/schedules/n/run", headers=key).status_code == 409
    # Another user's key of the same name is theirs.
    assert bob.post("/schedules/o/run", headers=key).status_code == 202
    assert alice.post("/schedules/m/run").json()["id"] != first.json()["id"]
    runs = alice.get("/schedules/m/runs").json()["items"]
    assert len(runs) == 3
    long_key = {"Idempotency-Key": "k" * 300}
    assert alice.post("/schedules/m/run", headers=long_key).status_code == 422


def test_concurrent_retries_with_one_key_make_one_run(db_server: Server) -> None:
    db_server.admin.post("/schedules", json={"id": "m", "task": "api:echo", "schedule": "manual"})

    async def go() -> set[str]:
        async with httpx.AsyncClient(
            base_url=db_server.api,
            headers={"Authorization": f"Bearer {db_server.admin_token}"},
        ) as c:
            answers = await asyncio.gather(
                *(c.post("/schedules/m/run", headers={"Idempotency-Key": "same"}) for _ in range(8))
            )
        assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
        return {a.json()["id"] for a in answers}

    assert len(asyncio.run(go())) == 1
    assert len(db_server.admin.get("/schedules/m/runs").json()["items"]) == 1


def test_binds_loopback_and_sigterm_lets_a_running_run_finish(
    sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(sqlite_url)
    assert server.url.startswith("http://127.0.0.1:")
    admin = server.admin
    admin.post(
        "/schedules",
        json={"id": "slow", "task": "api:sleep", "schedule": "manual", "data": {"seconds": 1.5}},
    )
    run = admin.post("/schedules/slow/run").json()
    deadline = time.monotonic() + 10
    while admin.get(f"/runs/{run['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.stop(signal.SIGTERM) == 0
    assert "SIGTERM: stopping" in server.stderr()

    async def status() -> str:
        async with Scheduler(sqlite_url, engine=False) as s:
            return (await s.get_run(run["id"])).status

    assert asyncio.run(status()) == "succeeded"
