"""Signing out of the dashboard ends the sign-in in the database: a copy of the session
cookie is refused afterwards by every ``tickwork serve`` on that database, on SQLite and
PostgreSQL, over real HTTP. The cookie is never the token signed in with."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import re
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from tests.api.conftest import Server, StartServer, serve_api
from tests.web.conftest import ADMIN_TOKEN, Dashboard, csrf_of
from tickwork.web.session import SESSION_COOKIE

__all__ = ["serve_api"]
pytestmark = [pytest.mark.e2e]


OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def client(server: Server, **kwargs: object) -> httpx.Client:
    made = httpx.Client(base_url=server.url, timeout=10, **kwargs)  # type: ignore[arg-type]
    OPEN.append(made)
    return made


def signed_in(server: Server, token: str) -> httpx.Client:
    """A browser that signed in to ``server`` with ``token``."""
    browser = client(server)
    r = browser.post("/login", data={"token": token, "next": "/"})
    assert r.status_code == 303, r.text
    return browser


def with_cookie(server: Server, cookie: str) -> httpx.Client:
    """Another client sending a copy of a session cookie."""
    return client(server, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})


def test_a_copied_cookie_is_refused_on_every_node_after_sign_out(
    db_url: str, serve_api: StartServer
) -> None:
    first = serve_api(db_url)
    second = serve_api(db_url)  # another node on the same database
    token = first.user_token("ann")
    browser = signed_in(first, token)
    cookie = browser.cookies[SESSION_COOKIE]
    assert token not in cookie
    # The cookie is no API credential: a copy of it cannot be used as the token.
    as_bearer = first.client(cookie).get("/schedules")
    assert as_bearer.status_code == 401
    for node in (first, second):
        page = with_cookie(node, cookie).get("/schedules")
        assert page.status_code == 200 and "Sign out" in page.text
    elsewhere = signed_in(second, token)  # the same user, signed in in another browser

    home = browser.get("/")
    out = browser.post("/logout", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert SESSION_COOKIE not in browser.cookies

    for node in (first, second):
        copy = with_cookie(node, cookie)
        page = copy.get("/schedules")
        assert page.status_code == 303, node
        assert page.headers["location"] == "/login?next=%2Fschedules"
        live = copy.get("/schedules", headers={"HX-Request": "true"})
        assert live.status_code == 401 and live.headers["hx-redirect"].startswith("/login")
        assert copy.get("/ui/events").status_code == 401
        form = copy.post("/preferences", data={"csrf": csrf_of(home.text), "time": "utc"})
        assert form.status_code == 303 and form.headers["location"].startswith("/login")
    # Only that sign-in ended: the other browser and the token itself still work.
    assert "Sign out" in elsewhere.get("/schedules").text
    assert first.client(token).get("/schedules").status_code == 200


def test_revoking_the_token_ends_the_sign_ins_made_with_it(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """A sign-in made with an API token ends as soon as that token is revoked."""
    server = serve_api(sqlite_url)
    token = server.user_token("ann")
    browser = signed_in(server, token)
    assert browser.get("/schedules").status_code == 200
    token_id = token.split("_")[1]
    assert server.admin.delete(f"/tokens/{token_id}").status_code in (200, 204)
    assert browser.get("/schedules").status_code == 303


async def test_a_sign_in_ends_with_the_credential_it_was_made_with(dashboard: Dashboard) -> None:
    """Made with ``TICKWORK_ADMIN_TOKEN``: ends when the server's admin token changes.
    Made with a JWT: lasts no longer than its ``exp``, ends when JWTs are turned off."""
    settings = dashboard.app.state.settings
    admin = await dashboard.signed_in("admin")
    async with admin:
        assert (await admin.get("/")).status_code == 200
        dashboard.app.state.settings = dataclasses.replace(
            settings, admin_token="another-admin-token"
        )
        assert (await admin.get("/")).status_code == 303
        dashboard.app.state.settings = settings  # the same one again: signed in again
        assert (await admin.get("/")).status_code == 200

    with_jwt = dataclasses.replace(settings, jwt_secret="s" * 32)
    dashboard.app.state.settings = with_jwt
    claim = jwt.encode({"sub": "carol", "exp": int(time.time()) + 600}, "s" * 32, "HS256")
    async with dashboard.client() as carol:
        r = await carol.post("/login", data={"token": claim, "next": "/"})
        assert r.status_code == 303
        max_age = int(re.findall(r"Max-Age=(\d+)", r.headers["set-cookie"])[0])
        assert 590 <= max_age <= 600  # the JWT's exp, not the 7 days of a session
        assert (await carol.get("/")).status_code == 200
        dashboard.app.state.settings = settings  # the server takes no JWT any more
        assert (await carol.get("/")).status_code == 303


async def test_a_jwt_sign_in_ends_when_the_servers_jwt_key_changes(dashboard: Dashboard) -> None:
    """A JWT secret replaced (it leaked, say) ends the sign-ins made with JWTs it
    signed, as a changed admin token ends those made with it; so does another issuer
    or audience required."""
    settings = dashboard.app.state.settings
    with_jwt = dataclasses.replace(settings, jwt_secret="s" * 32)
    claim = jwt.encode({"sub": "carol", "exp": int(time.time()) + 600}, "s" * 32, "HS256")
    for changed in (
        dataclasses.replace(with_jwt, jwt_secret="t" * 32),
        dataclasses.replace(with_jwt, jwt_audience="another-service"),
    ):
        dashboard.app.state.settings = with_jwt
        async with dashboard.client() as carol:
            assert (await carol.post("/login", data={"token": claim})).status_code == 303
            assert (await carol.get("/")).status_code == 200
            dashboard.app.state.settings = changed
            assert (await carol.get("/")).status_code == 303
            dashboard.app.state.settings = with_jwt  # the same keys again: signed in again
            assert (await carol.get("/")).status_code == 200
    dashboard.app.state.settings = settings


async def test_a_sign_in_keeps_nothing_to_guess_the_admin_token_from(dashboard: Dashboard) -> None:
    """A copy of the database holds no plain hash of ``TICKWORK_ADMIN_TOKEN`` (nor of the
    JWT secret) that a weak one could be guessed from offline: what a sign-in keeps of it
    is keyed by the session's own secret, which only the cookie holds."""
    admin = await dashboard.signed_in("admin")
    async with admin:
        assert (await admin.get("/")).status_code == 200
        secret = admin.cookies[SESSION_COOKIE]
    found = await asyncio.to_thread(dashboard.scheduler.store.get_session, secret.split("_")[1])
    assert found is not None
    kept = found[0].credential_hash
    assert kept is not None
    assert kept != hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    assert kept == hmac.new(secret.encode(), ADMIN_TOKEN.encode(), hashlib.sha256).hexdigest()


def test_signing_in_again_ends_the_sign_in_it_replaces(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """The browser's previous cookie is replaced, and its sign-in ended: a copy of it
    cannot outlive the next sign-out, which only knows the new cookie."""
    server = serve_api(sqlite_url)
    token = server.user_token("ann")
    browser = signed_in(server, token)
    first = browser.cookies[SESSION_COOKIE]
    again = browser.post("/login", data={"token": token, "next": "/"})
    assert again.status_code == 303
    second = browser.cookies[SESSION_COOKIE]
    assert second != first
    assert with_cookie(server, first).get("/schedules").status_code == 303
    assert with_cookie(server, second).get("/schedules").status_code == 200
