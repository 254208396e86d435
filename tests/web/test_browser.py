"""The dashboard in a real browser (Debian's chromium driven by Playwright) against
``tickwork serve`` running as a process: what a person does, end to end."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from tests.api.conftest import Server
from tests.web.browsing import ON_BOTH_DATABASES, Tokens, api, create, sign_in

pytestmark = [pytest.mark.e2e]


@ON_BOTH_DATABASES
def test_create_through_the_form_and_watch_its_run_appear_live(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.get_by_role("link", name="New schedule").first.click()
    page.get_by_label("Task").select_option("reports:daily")
    expect(page.locator("#task-params")).to_contain_text("region")
    # A wrong expression: its error appears under the field before anything is submitted.
    page.get_by_label("Schedule").fill("0 0 32 * *")
    expect(page.locator("#schedule-error")).to_have_text("day-of-month 32 out of range 1-31")
    assert page.url.endswith("/schedules/new")
    page.get_by_label("Schedule").fill("every 2s")
    expect(page.locator("#schedule-ok")).to_contain_text("interval")
    expect(page.locator("#schedule-help")).to_contain_text("Next:")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Data").fill('{"region": "apac"}')
    page.get_by_label("Name").fill("live report")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/schedules/[^/]+$"))
    expect(page.get_by_role("heading", name="live report")).to_be_visible()
    # No reload from here: a marker set on this document must survive the run appearing.
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#runs")).to_contain_text("succeeded", timeout=20_000)
    assert page.evaluate("window.__sameDocument === true")
    assert page.evaluate("document.body.getAttribute('data-live')") == "on"


@ON_BOTH_DATABASES
def test_a_schedules_next_and_last_fire_follow_its_fires_live(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    """Next fire never stays in the past, nor Last fire and Fires so far behind, while
    the page is open."""
    token = tokens("alice")
    s = create(server, token, task="reports:daily", schedule="every 2s", id="ticking")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/{s['id']}")
    fires = page.locator("//dt[text()='Fires so far']/following-sibling::dd[1]")
    last = page.locator("//dt[text()='Last fire']/following-sibling::dd[1]/time")
    nxt = page.locator("//dt[text()='Next fire']/following-sibling::dd[1]/time")
    before = int(fires.inner_text())
    first_next = nxt.get_attribute("datetime")
    page.evaluate("window.notReloaded = true")
    expect(fires).not_to_have_text(str(before), timeout=20_000)
    expect(fires).not_to_have_text(str(before + 1), timeout=20_000)
    expect(nxt).not_to_have_attribute("datetime", first_next or "", timeout=20_000)
    assert last.get_attribute("datetime")
    assert page.evaluate("window.notReloaded") is True


@ON_BOTH_DATABASES
def test_pause_with_a_reason_then_resume(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    s = create(server, tokens("alice"), task="reports:daily", schedule="0 3 * * *", id="pausable")
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/{s['id']}")
    page.get_by_label("Reason").fill("vendor API is down")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#pause-note")).to_contain_text("vendor API is down")
    expect(page.locator("#pause-note")).to_contain_text("by alice")
    expect(page.locator("#state")).to_have_text("paused")
    expect(page.locator("table").last).to_contain_text("schedule.paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#state")).to_have_text("active")
    expect(page.locator("#pause-note")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause")).to_be_visible()


def test_run_now_is_one_click_on_a_schedules_page(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    """Pause, Resume, Run now, Edit and Delete are there to press, not folded away."""
    s = create(server, tokens("alice"), task="reports:daily", schedule="manual", id="one-click")
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/{s['id']}")
    for name in ("Pause", "Edit", "Delete"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    page.get_by_role("button", name="Run now", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[^/]+$"))
    expect(page.locator("#result")).to_contain_text('"region": "eu"', timeout=20_000)


def test_run_now_with_data_shows_its_result(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    s = create(server, tokens("alice"), task="reports:daily", schedule="manual", id="on-demand")
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/{s['id']}")
    page.get_by_text("Run now with data").click()
    page.get_by_label("Run data").fill('{"region": "latam", "rows": 7}')
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/[^/]+$"))
    expect(page.locator("#result")).to_contain_text('"region": "latam"', timeout=20_000)
    expect(page.locator("#logs")).to_contain_text("building the latam report")


def test_a_failed_runs_traceback_and_logs(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    s = create(
        server,
        tokens("alice"),
        task="demo:fail",
        schedule="manual",
        id="breaks",
        data={"why": "the disk is full"},
        retry={"max_attempts": 1},
    )
    run = api(server, tokens("alice")).post(f"/schedules/{s['id']}/run", json={}).json()
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/{s['id']}")
    expect(page.locator("#runs")).to_contain_text("failed", timeout=20_000)
    page.get_by_role("link", name=run["id"]).click()
    expect(page.locator("#traceback")).to_contain_text("RuntimeError: the disk is full")
    expect(page.locator("#logs")).to_contain_text("about to fail: the disk is full")
    # The level filter and the search keep only matching lines.
    page.get_by_label("Level").select_option("CRITICAL")
    page.get_by_role("button", name="Filter logs").click()
    expect(page.locator("#logs")).to_contain_text("No line matches")
    page.get_by_label("Level").select_option("ERROR")
    page.get_by_role("searchbox", name="Search").fill("disk")
    page.get_by_role("button", name="Filter logs").click()
    expect(page.locator("#logs")).to_contain_text("about to fail")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download logs").click()
    text = Path(download.value.path()).read_text()
    assert "ERROR demo [attempt 1] about to fail: the disk is full" in text


def test_bulk_pause_of_everything_matching_a_filter(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("bulkuser")
    for name in ("etl-a", "etl-b", "etl-c", "other"):
        create(server, token, task="reports:daily", schedule="0 4 * * *", id=f"bulk-{name}")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules?q=etl")
    expect(page.locator("#count")).to_contain_text("3 schedules")
    page.get_by_label("all 3 matching the filter").check()
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_role("button", name="Pause selected").click()
    expect(page.get_by_role("status")).to_contain_text("Paused 3 schedules")
    assert messages == ["Pause 3 schedules?"]
    states = {s["id"]: s["status"] for s in api(server, token).get("/schedules").json()["items"]}
    assert states == {
        "bulk-etl-a": "paused",
        "bulk-etl-b": "paused",
        "bulk-etl-c": "paused",
        "bulk-other": "active",
    }


def test_a_bulk_pause_records_its_reason(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("bulkreason")
    for name in ("sync-a", "sync-b"):
        create(server, token, task="reports:daily", schedule="0 4 * * *", id=name)
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules")
    page.get_by_label("Select sync-a").check()
    page.get_by_label("Select sync-b").check()
    page.get_by_label("Reason for Pause").fill("warehouse migration")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pause selected").click()
    expect(page.get_by_role("status")).to_contain_text("Paused 2 schedules")
    page.goto(f"{server.url}/schedules/sync-b")
    expect(page.locator("#pause-reason")).to_have_text("warehouse migration")


def test_switch_the_time_display(context: BrowserContext, server: Server, tokens: Tokens) -> None:
    token = tokens("zoned")
    create(
        server,
        token,
        task="reports:daily",
        schedule="30 9 * * *",
        id="tokyo",
        timezone="Asia/Tokyo",
    )
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/tokyo")
    first = page.locator("ol li time").first
    expect(first).to_contain_text("09:30:00 JST")
    page.get_by_label("Time display").select_option("utc")
    expect(page.locator("ol li time").first).to_contain_text("00:30:00 UTC")
    # Remembered: a new page of this user shows UTC too.
    page.goto(f"{server.url}/schedules/tokyo")
    expect(page.locator("ol li time").first).to_contain_text("00:30:00 UTC")
    with page.expect_navigation():
        page.get_by_label("Time display").select_option("browser")
    browser_zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    expect(page.locator("#time-mode")).to_have_value("browser")
    assert browser_zone
    rendered = page.locator("ol li time").first.inner_text()
    expected = page.evaluate(
        "new Intl.DateTimeFormat(undefined, {year:'numeric', month:'2-digit', day:'2-digit',"
        " hour:'2-digit', minute:'2-digit', second:'2-digit', timeZoneName:'short'})"
        ".format(new Date(document.querySelector('ol li time').getAttribute('datetime')))"
    )
    assert rendered == expected


def test_another_user_does_not_see_the_first_users_schedules(
    context: BrowserContext, browser: Browser, server: Server, tokens: Tokens
) -> None:
    create(server, tokens("carol"), task="reports:daily", schedule="0 5 * * *", id="carols")
    page = context.new_page()
    sign_in(page, server, tokens("dave"))
    page.goto(f"{server.url}/schedules")
    expect(page.locator("#count")).to_be_visible()
    expect(page.get_by_role("link", name="carols")).to_have_count(0)
    page.goto(f"{server.url}/schedules/carols")
    expect(page.get_by_role("alert")).to_contain_text("No schedule 'carols'")
    other = browser.new_context()
    try:
        carol = other.new_page()
        sign_in(carol, server, tokens("carol"))
        carol.goto(f"{server.url}/schedules")
        expect(carol.get_by_role("link", name="carols")).to_be_visible()
    finally:
        other.close()


def test_a_read_only_token_sees_no_write_control(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    create(server, tokens("erin"), task="reports:daily", schedule="0 6 * * *", id="erins")
    page = context.new_page()
    sign_in(page, server, tokens("erin", read_only=True))
    for path in ("/", "/schedules", "/schedules/erins", "/tasks"):
        page.goto(server.url + path)
        expect(page.get_by_text("erin (read-only)")).to_be_visible()
        for name in (
            "Pause",
            "Resume",
            "Run now",
            "Edit",
            "Delete",
            "Create",
            "Pause selected",
            "Delete selected",
        ):
            expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("link", name="New schedule")).to_have_count(0)
        expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("link", name="schedule it")).to_have_count(0)


def test_the_live_stream_carries_only_the_callers_events(server: Server, tokens: Tokens) -> None:
    """Read as a browser does (session cookie): one's own changes arrive, another
    user's never do, and the ids resume where a reconnect left off."""
    with httpx.Client(base_url=server.url, timeout=20) as browser_like:
        r = browser_like.post("/login", data={"token": tokens("frank"), "next": "/"})
        assert r.status_code == 303
        seen: list[str] = []
        with browser_like.stream("GET", "/ui/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            create(server, tokens("grace"), task="reports:daily", schedule="manual", id="graces")
            create(server, tokens("frank"), task="reports:daily", schedule="manual", id="franks")
            for line in stream.iter_lines():
                seen.append(line)
                if "franks" in line:
                    break
        assert not any("graces" in line for line in seen)
        ids = [int(line[4:]) for line in seen if line.startswith("id: ")]
        assert ids and "event: change" in seen
        # Resuming after an id replays what came after it, nothing before.
        api(server, tokens("frank")).post("/schedules/franks/pause", json={})
        with browser_like.stream(
            "GET", "/ui/events", headers={"Last-Event-ID": str(ids[-1])}
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    assert "schedule.paused" in line and "franks" in line
                    break


def test_a_resume_point_that_is_not_an_event_id_streams_from_now(
    server: Server, tokens: Tokens
) -> None:
    """A position the stream cannot use (digits ``int`` cannot read, a number longer than
    any event id) is passed over, as a missing one is: not a server error."""
    with httpx.Client(base_url=server.url, timeout=20) as browser_like:
        r = browser_like.post("/login", data={"token": tokens("odd-ids"), "next": "/"})
        assert r.status_code == 303
        asked: list[dict[str, Any]] = [
            {"params": {"after": bad}} for bad in ("\u00b2", "\u0663", "9" * 40, "-1", "1e3")
        ]
        asked += [{"headers": {"Last-Event-ID": bad}} for bad in (b"\xb2", b"9" * 40)]
        for request in asked:
            with browser_like.stream("GET", "/ui/events", **request) as stream:
                assert stream.status_code == 200, request
                assert stream.headers["content-type"].startswith("text/event-stream")


def test_the_stream_pauses_while_the_tab_is_hidden(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("hidden")
    create(server, token, task="reports:daily", schedule="manual", id="while-hidden")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/while-hidden")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.evaluate("window.__sameDocument = true")

    def set_hidden(hidden: bool) -> None:
        page.evaluate(
            "h => { Object.defineProperty(document, 'hidden', {value: h, configurable: true});"
            " document.dispatchEvent(new Event('visibilitychange')); }",
            hidden,
        )

    set_hidden(True)
    expect(page.locator("body")).to_have_attribute("data-live", "off")
    api(server, token).post("/schedules/while-hidden/run", json={})
    page.wait_for_timeout(1500)
    expect(page.locator("#runs")).to_contain_text("No runs.")  # nothing while hidden
    set_hidden(False)
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    expect(page.locator("#runs")).to_contain_text("succeeded")  # caught up when shown
    assert page.evaluate("window.__sameDocument === true")


def test_a_live_refresh_keeps_the_rows_being_selected(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("selector")
    for name in ("sel-a", "sel-b"):
        create(server, token, task="reports:daily", schedule="manual", id=name)
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules")
    page.get_by_label("Select sel-a").check()
    api(server, token).post("/schedules/sel-b/run", json={})
    page.wait_for_timeout(2500)  # the run's events arrive; the refresh is held back
    expect(page.get_by_label("Select sel-a")).to_be_checked()
    page.get_by_label("Select sel-a").uncheck()
    # With nothing selected the next change refreshes the rows: the strip shows the run.
    api(server, token).post("/schedules/sel-a/run", json={})
    expect(page.locator("tr[data-id='sel-a'] .strip a")).to_have_count(1)
    expect(page.locator("tr[data-id='sel-b'] .strip a")).to_have_count(1)


def test_a_revoked_session_leaves_an_open_page_for_the_sign_in_page(
    context: BrowserContext, server: Server
) -> None:
    """The open page's stream stops with the token, and its live refresh, which now
    answers with the sign-in page, takes the whole page there instead of emptying the
    rows; signing in again comes back to the page."""
    token = server.user_token("revoked")
    create(server, token, task="reports:daily", schedule="manual", id="soon-revoked")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules?q=soon")
    expect(page.locator("tr[data-id='soon-revoked']")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    revoked = server.admin.delete(f"/tokens/{token.split('_')[1]}")
    assert revoked.status_code == 200, revoked.text
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fschedules%3Fq%3Dsoon$"))
    page.get_by_label("Token").fill(server.user_token("revoked"))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/schedules\?q=soon$"))
    expect(page.locator("tr[data-id='soon-revoked']")).to_be_visible()


def test_keyboard_only_sign_in_and_pause(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("keys")
    create(server, token, task="reports:daily", schedule="0 7 * * *", id="by-keyboard")
    page = context.new_page()
    page.goto(server.url + "/login")
    expect(page.get_by_label("Token")).to_be_focused()  # autofocus
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto(f"{server.url}/schedules/by-keyboard")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(40):  # Tab through the header to the reason field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "pause-reason-field":
            break
    page.keyboard.type("maintenance window")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Pause")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#pause-note")).to_contain_text("maintenance window")


def test_the_overview_counts_and_charts_follow_runs_live(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("watcher")
    create(server, token, task="reports:daily", schedule="manual", id="watched")
    page = context.new_page()
    sign_in(page, server, token)
    expect(page.locator("#runs-succeeded")).to_have_text("0")
    chart = page.locator(".chart").first
    before = chart.get_attribute("data-chart")
    page.evaluate("window.__sameDocument = true")
    client = api(server, token)
    for _ in range(2):
        client.post("/schedules/watched/run", json={})
    expect(page.locator("#runs-succeeded")).to_have_text("2", timeout=20_000)
    assert page.locator(".chart").first.get_attribute("data-chart") != before
    expect(page.locator(".chart canvas").first).to_be_visible()  # redrawn by uPlot
    assert page.evaluate("window.__sameDocument === true")


def test_delete_asks_first(context: BrowserContext, server: Server, tokens: Tokens) -> None:
    token = tokens("deleter")
    create(server, token, task="reports:daily", schedule="0 8 * * *", id="doomed")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/doomed")
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    expect(page).to_have_url(re.compile(r"/schedules/doomed$"))
    assert api(server, token).get("/schedules/doomed").status_code == 200
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted schedule doomed")
    assert messages and messages[0].startswith("Delete schedule doomed?")
    assert api(server, token).get("/schedules/doomed").status_code == 404


def test_a_schedule_deleted_elsewhere_leaves_its_open_page_for_the_list(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("alice")
    # Not test_delete_asks_first's id: a deleted id stays its owner's while its history
    # is kept, and this module's tests share one server.
    s = create(server, token, task="reports:daily", schedule="manual", id="gone-elsewhere")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/{s['id']}")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    assert api(server, token).delete(f"/schedules/{s['id']}").status_code == 204
    expect(page).to_have_url(re.compile(r"/schedules$"))
    expect(page.get_by_role("status")).to_have_text(
        "Schedule gone-elsewhere no longer exists: it was deleted."
    )


def test_a_schedule_paused_elsewhere_shows_paused_live(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("elsewhere")
    create(server, token, task="reports:daily", schedule="0 9 * * *", id="remote-pause")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/remote-pause")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.evaluate("window.__sameDocument = true")
    api(server, token).post("/schedules/remote-pause/pause", json={"reason": "from the CLI"})
    expect(page.locator("#state")).to_have_text("paused")
    expect(page.locator("#pause-note")).to_contain_text("from the CLI")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    history = page.locator("section", has=page.get_by_role("heading", name="Change history"))
    expect(history).to_contain_text("schedule.paused")
    expect(history).to_contain_text("from the CLI")
    assert page.evaluate("window.__sameDocument === true")


def test_a_live_refresh_keeps_what_is_being_typed(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    token = tokens("typist")
    create(server, token, task="reports:daily", schedule="manual", id="typed")
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/schedules/typed")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.get_by_label("Reason").fill("half-written reason")
    api(server, token).post("/schedules/typed/run", json={})
    expect(page.locator("#runs")).to_contain_text("succeeded")  # the runs did refresh
    expect(page.get_by_label("Reason")).to_have_value("half-written reason")


@ON_BOTH_DATABASES
def test_a_retrying_runs_page_shows_its_end_live_under_its_traceback(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    """The traceback of the failed attempt is shown open: that is not a panel the user
    opened, so the page still follows the run to its end."""
    token = tokens("alice")
    s = create(
        server,
        token,
        task="demo:fail-first",
        schedule="manual",
        id="fails-first",
        retry={"max_attempts": 2, "delay": 4, "jitter": False},
    )
    run = api(server, token).post(f"/schedules/{s['id']}/run", json={}).json()
    deadline = time.monotonic() + 20
    while api(server, token).get(f"/runs/{run['id']}").json()["status"] != "retrying":
        assert time.monotonic() < deadline, "the run never retried"
        time.sleep(0.1)
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/runs/{run['id']}")
    expect(page.locator("#traceback")).to_contain_text("the first attempt always fails")
    expect(page.locator("#run-view .status").first).to_have_text("retrying")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#run-view .status").first).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#result")).to_contain_text("succeeded on attempt 2")
    assert page.evaluate("window.notReloaded") is True


def test_cancel_a_running_run_from_its_page(
    context: BrowserContext, server: Server, tokens: Tokens, tmp_path: Path
) -> None:
    token = tokens("alice")
    s = create(
        server,
        token,
        task="demo:steps",
        schedule="manual",
        id="to-cancel",
        data={"gate": str(tmp_path / "never")},
    )
    run = api(server, token).post(f"/schedules/{s['id']}/run", json={}).json()
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/runs/{run['id']}")
    expect(page.locator("#logs")).to_contain_text("first step done", timeout=20_000)
    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-view .status").first).to_have_text("cancelled", timeout=20_000)
    assert questions and run["id"] in questions[0]
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert api(server, token).get(f"/runs/{run['id']}").json()["status"] == "cancelled"


@ON_BOTH_DATABASES
def test_a_running_runs_lines_appear_live(
    context: BrowserContext, server: Server, tokens: Tokens, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    token = tokens("alice")
    s = create(server, token, task="demo:steps", schedule="manual", id="steps", data={"gate": gate})
    run = api(server, token).post(f"/schedules/{s['id']}/run", json={}).json()
    page = context.new_page()
    sign_in(page, server, token)
    page.goto(f"{server.url}/runs/{run['id']}")
    expect(page.locator("#logs")).to_contain_text("first step done", timeout=20_000)
    expect(page.locator("#logs")).to_contain_text("the run is running")
    page.evaluate("window.notReloaded = true")
    Path(gate + ".1").touch()
    # Appended without a reload, while the run still runs.
    expect(page.locator("#logs")).to_contain_text("second step done")
    assert page.evaluate("window.notReloaded") is True
    assert api(server, token).get(f"/runs/{run['id']}").json()["status"] == "running"
    # Filtered (WARNING and above, "third"), the live lines are filtered too.
    page.goto(f"{server.url}/runs/{run['id']}?level=WARNING&q=third")
    expect(page.locator("#logs")).to_contain_text("0 of 2 lines")
    page.evaluate("window.notReloaded = true")
    Path(gate + ".2").touch()
    expect(page.locator("#logs")).to_contain_text("third step done")
    expect(page.locator("#logs")).to_contain_text("1 of 3 lines")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#logs")).to_contain_text("the run is running")
    Path(gate + ".3").touch()
    expect(page.locator("#run-view")).to_contain_text("succeeded", timeout=20_000)
    expect(page.locator("#logs")).to_contain_text("1 of 3 lines")


def test_the_time_display_follows_the_user_to_another_browser(
    browser: Browser, server: Server, tokens: Tokens
) -> None:
    token = tokens("traveller")
    create(
        server,
        token,
        task="reports:daily",
        schedule="30 9 * * *",
        id="osaka",
        timezone="Asia/Tokyo",
    )
    here = browser.new_context(viewport={"width": 1280, "height": 900})
    there = browser.new_context(viewport={"width": 1280, "height": 900})  # no shared cookie
    try:
        page = here.new_page()
        sign_in(page, server, token)
        page.goto(f"{server.url}/schedules/osaka")
        expect(page.locator("ol li time").first).to_contain_text("09:30:00 JST")
        page.get_by_label("Time display").select_option("utc")
        expect(page.locator("ol li time").first).to_contain_text("00:30:00 UTC")
        other = there.new_page()
        sign_in(other, server, token)
        other.goto(f"{server.url}/schedules/osaka")
        expect(other.locator("#time-mode")).to_have_value("utc")
        expect(other.locator("ol li time").first).to_contain_text("00:30:00 UTC")
        # Changed on the second browser: the first shows it on its next page.
        other.get_by_label("Time display").select_option("schedule")
        expect(other.locator("ol li time").first).to_contain_text("09:30:00 JST")
        page.goto(f"{server.url}/schedules/osaka")
        expect(page.locator("#time-mode")).to_have_value("schedule")
        expect(page.locator("ol li time").first).to_contain_text("09:30:00 JST")
    finally:
        here.close()
        there.close()


#: The innermost elements that reach past the right edge of the window, outside any box
#: that scrolls: what makes a page wider than the screen.
WIDENING = """() => {
  const edge = window.innerWidth + 1;
  const past = (el) => el.getBoundingClientRect().right > edge;
  const scrolls = (el) => el.closest(".table-wrap, pre") !== null;
  return Array.from(document.querySelectorAll("body *"))
    .filter((el) => past(el) && !scrolls(el) && !Array.from(el.children).some(past))
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
         (el.className ? "." + String(el.className).split(" ").join(".") : ""))
    .slice(0, 5);
}"""


def test_long_unbroken_text_never_widens_a_page_on_a_phone(
    browser: Browser, server: Server, tokens: Tokens
) -> None:
    """Names, tags, descriptions, reasons, errors, log lines, data and results of
    hundreds of characters without a space, on a 390-px screen: every page stays as
    wide as the screen (the text wraps, or a table scrolls in its own box)."""
    word = "w" * 500
    user = "u" * 200
    token = tokens(user)
    long_id = "i" * 200
    create(
        server,
        token,
        task="reports:daily",
        schedule="manual",
        id=long_id,
        name=word,
        description=word,
        tags=[word],
        data={"region": word},
    )
    create(
        server,
        token,
        task="demo:fail",
        schedule="manual",
        id="f" * 200,
        data={"why": word},
        retry={"max_attempts": 1},
    )
    client = api(server, token)
    ok = client.post(f"/schedules/{long_id}/run", json={}).json()
    failed = client.post(f"/schedules/{'f' * 200}/run", json={}).json()
    for run in (ok, failed):
        deadline = time.monotonic() + 20
        while client.get(f"/runs/{run['id']}").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
    server.client().post("/tokens", json={"user": word[:200]})  # for the Tokens page
    too_wide: list[tuple[str, int, list[str]]] = []

    def measure(page: Page, what: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > page.evaluate("window.innerWidth"):
            too_wide.append((what[:60], width, page.evaluate(WIDENING)))

    phone = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = phone.new_page()
        sign_in(page, server, token)
        # Paused through the page: its note and the flash that says so hold the reason.
        page.goto(f"{server.url}/schedules/{long_id}")
        page.get_by_label("Reason").fill(word)
        page.get_by_role("button", name="Pause").click()
        expect(page.locator("#pause-reason")).to_have_text(word)
        measure(page, "just paused")
        for path in (
            "/",
            "/schedules",
            f"/schedules?q={word}",
            f"/schedules/{long_id}",
            f"/schedules/{long_id}/edit",
            "/runs",
            f"/runs/{ok['id']}",
            f"/runs/{failed['id']}",
            f"/runs/{failed['id']}?q={word}",
            f"/schedules/{word[:200]}",  # not found, saying which
            "/tasks",
            "/nodes",
        ):
            page.goto(server.url + path)
            expect(page.locator("main")).to_be_visible()
            measure(page, path)
        page.context.clear_cookies()
        sign_in(page, server, server.admin_token or "")
        for path in ("/audit", "/tokens"):
            page.goto(server.url + path)
            expect(page.locator("main")).to_be_visible()
            measure(page, path)
        assert not too_wide, "\n".join(map(str, too_wide))
    finally:
        phone.close()


def test_a_nul_in_a_dashboard_address_answers_a_dashboard_page_or_fragment(
    server: Server, tokens: Tokens
) -> None:
    """Over HTTP, against ``tickwork serve``: a NUL character (``%00``) in a dashboard
    address is refused with a dashboard page, or the fragment an htmx request swaps in;
    the REST API keeps its JSON error shape."""
    token = tokens("alice")
    with httpx.Client(base_url=server.url, timeout=30) as web:
        r = web.post("/login", data={"token": token, "next": "/"})
        assert r.status_code == 303, r.text
        for address in ("/schedules?q=a%00b", "/runs?task=%00", "/schedules/a%00b"):
            page = web.get(address)
            assert page.status_code == 400, (address, page.text[:300])
            assert page.headers["content-type"].startswith("text/html"), address
            assert "Content-Security-Policy" in page.headers
            assert "NUL character" in page.text
            assert '<nav aria-label="Main">' in page.text  # the dashboard's page, signed in
        # The form's live check: a fragment to show under the field, not a page.
        check = web.get(
            "/ui/validate",
            params={"schedule": "every 2s\x00", "timezone": "UTC"},
            headers={"HX-Request": "true", "HX-Current-URL": f"{server.url}/schedules/new"},
        )
        assert check.status_code == 400, check.text[:300]
        assert check.headers["content-type"].startswith("text/html")
        assert check.text.lstrip().startswith('<p class="error" role="alert">')
        assert "NUL character" in check.text and "<html" not in check.text
    # The REST API refuses the same addresses in its own JSON error shape.
    rest = api(server, token)
    for answer in (rest.get("/schedules", params={"q": "a\x00b"}), rest.get("/schedules/a%00b")):
        assert answer.status_code >= 400, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == {"error"}, answer.text


def test_a_nul_typed_in_the_schedule_field_is_named_under_it(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/new")
    page.get_by_label("Schedule").fill("every 2s\x00")
    expect(page.locator("#schedule-help")).to_contain_text("NUL character")
    page.get_by_label("Schedule").fill("every 2s")
    expect(page.locator("#schedule-ok")).to_contain_text("interval")


def test_the_forms_next_fire_times_start_at_the_start_typed(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    """An interval counts from its start, and nothing fires before it: the times shown
    under the field are the ones the schedule will have."""
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/new")
    page.get_by_label("Schedule").fill("every 10m")
    page.get_by_label("Time zone").fill("Asia/Tokyo")
    page.get_by_label("Start at").fill("2030-01-02T03:04:05")
    expect(page.locator("#schedule-help")).to_contain_text(
        "Next: 2030-01-02 03:04:05 JST · 2030-01-02 03:14:05 JST"
    )
    # Changed first, the expression is checked with the start already typed.
    page.get_by_label("Schedule").fill("0 9 * * *")
    expect(page.locator("#schedule-help")).to_contain_text("Next: 2030-01-02 09:00:00 JST")


def test_an_address_with_no_page_answers_the_dashboards_404_page(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    """A mistyped address, or a form's address opened as a page, answers a page of the
    dashboard; a client of the REST API keeps its JSON errors."""
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    for address in ("/schedule/nightly", "/schedules/nightly/pause"):
        answer = page.goto(server.url + address)
        assert answer is not None and answer.status == 404
        expect(page.get_by_role("heading", name="No such page")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_text(f"There is no page at {address}.")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    with httpx.Client(base_url=server.url) as plain:
        r = plain.get("/schedule/nightly")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = plain.get("/schedules/nightly/pause")
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        r = plain.get("/api/v1/nowhere", headers={"Accept": "text/html"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
