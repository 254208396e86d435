"""Fixtures of the dashboard's HTML-level tests: the app on a real SQLite file and on a
real PostgreSQL database, driven through httpx, and tokens for an admin, two users and
a read-only user."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tests.web import tasks  # noqa: F401  (registers the tasks)
from tickwork import Scheduler
from tickwork.api.live import stop_live
from tickwork.api.settings import ApiSettings
from tickwork.web import router

ADMIN_TOKEN = "tw-admin-secret-for-tests"


@dataclass
class Dashboard:
    scheduler: Scheduler
    app: FastAPI
    tokens: dict[str, str]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )

    async def signed_in(self, who: str) -> httpx.AsyncClient:
        """A client whose session cookie is ``who``'s (admin, alice, bob, reader)."""
        async with self.client() as login:
            r = await login.post("/login", data={"token": self.tokens[who], "next": "/"})
            assert r.status_code == 303, r.text
        client = self.client()  # unopened, so the test can use it in ``async with``
        client.cookies = login.cookies
        return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found[1]


async def post_form(
    client: httpx.AsyncClient, page: str, fields: dict[str, str], to: str | None = None
) -> httpx.Response:
    """Send a form of ``page`` as a browser without the page's script does: the page's
    CSRF token with ``fields``, to ``to`` (the page itself unless given)."""
    form = await client.get(page)
    return await client.post(to or page, data={"csrf": csrf_of(form.text), **fields})


@pytest.fixture
async def dashboard(db_url: str) -> AsyncIterator[Dashboard]:
    """The dashboard on SQLite and on PostgreSQL."""
    async with Scheduler(db_url, shutdown_grace=1) as scheduler:
        app = FastAPI()
        app.state.scheduler = scheduler
        app.state.settings = ApiSettings(admin_token=ADMIN_TOKEN, rate_limit=0)
        app.include_router(router)
        tokens = {"admin": ADMIN_TOKEN}
        for user, read_only in (("alice", False), ("bob", False), ("reader", True)):
            made = await scheduler.create_token(
                "alice" if user == "reader" else user, read_only=read_only
            )
            assert made is not None
            tokens[user] = made[1]
        try:
            yield Dashboard(scheduler, app, tokens)
        finally:
            await stop_live(app)


# The browser tests' fixtures (chromium, a ``tickwork serve`` per module, tokens).
from tests.web.browsing import browser, context, server, tokens  # noqa: E402

__all__ = ["browser", "context", "server", "tokens"]
