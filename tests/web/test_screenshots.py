"""Every page of the dashboard, light and dark, and the list at phone width, taken in
the browser. The pictures go to ``$TICKWORK_SCREENSHOTS`` when set (the docs use
``docs/images``), else to a temporary folder; each must be a real, non-blank page."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.api.conftest import Server
from tests.web.browsing import Tokens, api, create, sign_in

pytestmark = [pytest.mark.e2e]


def seed(server: Server, token: str) -> dict[str, str]:
    """A few schedules with history: successes, a failure with a traceback, a paused one."""
    client = api(server, token)
    create(
        server,
        token,
        task="reports:daily",
        schedule="0 2 * * 1-5",
        id="daily-report",
        name="Daily report",
        timezone="Europe/Paris",
        data={"region": "eu"},
        tags=["reports", "eu"],
    )
    create(
        server,
        token,
        task="reports:daily",
        schedule="every 15m",
        id="sync-crm",
        name="Sync CRM",
        timezone="America/New_York",
        tags=["sync"],
    )
    create(
        server,
        token,
        task="demo:fail",
        schedule="30 3 * * *",
        id="nightly-backup",
        name="Nightly backup",
        timezone="UTC",
        retry={"max_attempts": 1},
        tags=["ops"],
    )
    create(
        server,
        token,
        task="reports:daily",
        schedule="0 9 1 * *",
        id="monthly-invoices",
        name="Monthly invoices",
        timezone="Asia/Tokyo",
        tags=["billing"],
    )
    client.post("/schedules/monthly-invoices/pause", json={"reason": "waiting for new rates"})
    runs = [client.post("/schedules/daily-report/run", json={}).json() for _ in range(3)]
    runs.append(client.post("/schedules/sync-crm/run", json={"data": {"rows": 9}}).json())
    failed = client.post("/schedules/nightly-backup/run", json={}).json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses = {client.get(f"/runs/{r['id']}").json()["status"] for r in [*runs, failed]}
        if statuses <= {"succeeded", "failed"}:
            break
        time.sleep(0.2)
    return {"run": runs[0]["id"], "failed": failed["id"]}


def test_screenshots_of_every_page(
    browser: Browser, server: Server, tokens: Tokens, tmp_path: Path
) -> None:
    out = Path(os.environ.get("TICKWORK_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    ids = seed(server, server.admin_token or "")
    pages = {
        "login": "/login",
        "overview": "/",
        "schedules": "/schedules",
        "schedule": "/schedules/daily-report",
        "schedule-paused": "/schedules/monthly-invoices",
        "form": "/schedules/new",
        "edit": "/schedules/daily-report/edit",
        "run": f"/runs/{ids['run']}",
        "run-failed": f"/runs/{ids['failed']}",
        "runs": "/runs",
        "tasks": "/tasks",
        "nodes": "/nodes",
        "audit": "/audit",
        "tokens": "/tokens",
    }
    taken: list[Path] = []
    for scheme in ("light", "dark"):
        ctx = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme=scheme)
        try:
            page = ctx.new_page()
            sign_in(page, server, server.admin_token or "")
            for name, path in pages.items():
                if name == "login":
                    continue
                page.goto(server.url + path)
                expect(page.locator("main")).to_be_visible()
                page.wait_for_timeout(150)  # charts and countdowns drawn
                target = out / f"{name}-{scheme}.png"
                page.screenshot(path=str(target), full_page=True)
                taken.append(target)
            phone = browser.new_context(
                viewport={"width": 390, "height": 844},
                color_scheme=scheme,
                storage_state=ctx.storage_state(),
            )
            try:
                p = phone.new_page()
                p.goto(server.url + "/schedules")
                assert p.evaluate("document.documentElement.scrollWidth") <= 390 + 1
                target = out / f"schedules-phone-{scheme}.png"
                p.screenshot(path=str(target), full_page=True)
                taken.append(target)
            finally:
                phone.close()
            anon = browser.new_context(viewport={"width": 1280, "height": 700}, color_scheme=scheme)
            try:
                p = anon.new_page()
                p.goto(server.url + "/login")
                target = out / f"login-{scheme}.png"
                p.screenshot(path=str(target))
                taken.append(target)
            finally:
                anon.close()
        finally:
            ctx.close()
    assert len(taken) == 2 * (len(pages) + 1)
    for png in taken:
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000, png
