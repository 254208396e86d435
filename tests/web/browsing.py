"""What the browser tests share: Debian's chromium driven by Playwright, one
``tickwork serve`` process per test module, tokens, and signing in."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.api.conftest import Server, start_server
from tests.conftest import PG_URL, require_pg
from tests.conftest import _pg_admin_connect as pg_admin_connect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (as the ``pg_url`` fixture makes one per test,
    but for a module's server), dropped afterwards."""
    require_pg()
    name = f"tw_web_{uuid.uuid4().hex[:12]}"
    admin: Any = pg_admin_connect()
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One ``tickwork serve`` for the module, running the dashboard test tasks, on a
    SQLite file; a test parametrized with ``ON_BOTH_DATABASES`` gets one on PostgreSQL too."""
    tmp = tmp_path_factory.mktemp("web")
    with contextlib.ExitStack() as stack:
        if getattr(request, "param", "sqlite") == "postgres":
            url = stack.enter_context(pg_database())
        else:
            url = f"sqlite:///{tmp / 'tickwork.db'}"
        s = start_server(
            url, tmp, args=("--import", "tests.web.tasks"), env={"TICKWORK_RATE_LIMIT": "0"}
        )
        yield s
        s.stop()
        if s.proc.stdout is not None:
            s.proc.stdout.close()


#: The flows that go through the store run against ``tickwork serve`` on both databases.
ON_BOTH_DATABASES = pytest.mark.parametrize(
    "server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


class Tokens:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._made: dict[str, str] = {}

    def __call__(self, user: str, **options: object) -> str:
        key = f"{user}:{sorted(options.items())}"
        if key not in self._made:
            self._made[key] = self.server.user_token(user, **options)
        return self._made[key]


@pytest.fixture(scope="module")
def tokens(server: Server) -> Tokens:
    return Tokens(server)


def sign_in(page: Page, server: Server, token: str) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def api(server: Server, token: str) -> httpx.Client:
    return server.client(token)


def create(server: Server, token: str, **fields: object) -> dict[str, object]:
    r = api(server, token).post("/schedules", json=fields)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body
