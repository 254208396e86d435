"""The dashboard's forms in a real browser (Debian's chromium driven by Playwright)
against ``tickwork serve``, with and without the page's script: questions before
destructive actions, every bad field named at once, and a form too large to send."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Route, expect

from tests.api.conftest import Server, start_server
from tests.web.browsing import TIMEOUT_MS, Tokens, sign_in

pytestmark = [pytest.mark.e2e]

#: The server's body limit here: a form with a few kilobytes of data passes it.
MAX_BODY = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``tickwork serve`` for the module, with a small body limit."""
    tmp = tmp_path_factory.mktemp("web-forms")
    s = start_server(
        f"sqlite:///{tmp / 'tickwork.db'}",
        tmp,
        args=("--import", "tests.web.tasks"),
        env={"TICKWORK_RATE_LIMIT": "0", "TICKWORK_MAX_BODY": str(MAX_BODY)},
    )
    yield s
    s.stop()


@contextlib.contextmanager
def no_script(browser: Browser) -> Iterator[BrowserContext]:
    """A browser whose pages run no script: plain HTML forms only."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def _admin_token(server: Server) -> str:
    assert server.admin_token is not None
    return server.admin_token


def test_revoke_asks_once_with_the_script(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    tokens("carol")
    page = context.new_page()
    sign_in(page, server, _admin_token(server))
    page.goto(f"{server.url}/tokens")
    row = page.get_by_role("row").filter(has_text="carol")
    questions: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_timeout(300)
    assert len(questions) == 1 and "of carol (user)? It stops working at once." in questions[0]
    expect(row.get_by_role("cell", name="active")).to_be_visible()

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.get_by_role("button", name="Revoke").click()
    # Asked by the script, the server's own question is skipped: straight to the list.
    expect(page.get_by_role("status")).to_contain_text("Revoked token")
    expect(page).to_have_url(re.compile(r"/tokens$"))
    assert len(questions) == 2
    expect(page.get_by_role("row").filter(has_text="carol")).to_have_count(0)


def test_revoke_asks_on_a_page_of_its_own_without_the_script(
    browser: Browser, server: Server, tokens: Tokens
) -> None:
    tokens("dave")
    with no_script(browser) as ctx:
        page = ctx.new_page()
        sign_in(page, server, _admin_token(server))
        page.goto(f"{server.url}/tokens")
        page.get_by_role("row").filter(has_text="dave").get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("heading", name=re.compile(r"^Revoke token"))).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("of dave (user)? It stops working")
        page.get_by_role("link", name="Keep it").click()
        expect(page.get_by_role("row").filter(has_text="dave")).to_contain_text("active")
        page.get_by_role("row").filter(has_text="dave").get_by_role("button", name="Revoke").click()
        page.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_contain_text("Revoked token")
        expect(page.get_by_role("row").filter(has_text="dave")).to_have_count(0)


def test_every_bad_field_is_named_at_once_and_what_was_typed_stays(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    page.goto(f"{server.url}/schedules/new")
    page.get_by_label("Task").select_option("reports:daily")
    page.get_by_label("Schedule").fill("0 2 * * *")
    page.get_by_label("Data").fill('{"rows": "many"}')
    page.get_by_label("Name").fill("N" * 1500)
    page.get_by_label("Start at").fill("2099-06-02T00:00")
    page.get_by_label("End at").fill("2099-06-01T00:00")
    page.get_by_label("Priority (default 0)").fill("5000000")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#form-errors")).to_have_text(
        "Not saved: 4 fields to correct, each named below. What you typed is kept."
    )
    expect(page.locator("#data-error")).to_contain_text("data.rows must be an integer")
    expect(page.locator("#name-err")).to_contain_text("1500 characters long")
    expect(page.locator("#end_at-err")).to_have_text("end_at is before start_at")
    expect(page.locator("#priority-err")).to_contain_text("from -1000000 to 1000000")
    expect(page.get_by_label("Data")).to_have_value('{"rows": "many"}')
    expect(page.get_by_label("End at")).to_have_value("2099-06-01T00:00")
    expect(page.get_by_label("Priority (default 0)")).to_have_attribute("aria-invalid", "true")
    # Corrected, all in one go: saved.
    page.get_by_label("Data").fill('{"rows": 5}')
    page.get_by_label("Name").fill("fixed")
    page.get_by_label("End at").fill("2099-06-03T00:00")
    page.get_by_label("Priority (default 0)").fill("5")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="fixed")).to_be_visible()


@pytest.mark.parametrize("script", [True, False], ids=["script", "no-script"])
def test_a_form_over_the_body_limit_says_so_on_the_form(
    browser: Browser, server: Server, tokens: Tokens, script: bool
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=script)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        page = ctx.new_page()
        sign_in(page, server, tokens("erin"))
        page.goto(f"{server.url}/schedules/new")
        page.get_by_label("Task").select_option("reports:daily")
        page.get_by_label("Schedule").fill("0 2 * * *")
        page.get_by_label("Data").fill('{"region": "' + "x" * MAX_BODY + '"}')
        with page.expect_response(re.compile(r"/schedules/new$")) as answer:
            page.get_by_role("button", name="Create").click()
        assert answer.value.status == 413
        expect(page.get_by_role("heading", name="New schedule")).to_be_visible()
        expect(page.get_by_role("alert").first).to_contain_text(
            "Not saved: this server accepts at most 19.5 KiB (20,000 bytes) in one form,"
            " and the form sent is 19."
        )
        # Shortened, it is saved.
        page.get_by_label("Task").select_option("reports:daily")
        page.get_by_label("Schedule").fill("0 2 * * *")
        page.get_by_label("Data").fill('{"region": "eu"}')
        page.get_by_label("Name").fill(f"short enough {script}")
        page.get_by_role("button", name="Create").click()
        expect(page.get_by_role("heading", name=f"short enough {script}")).to_be_visible()
    finally:
        ctx.close()


def test_a_late_answer_to_an_earlier_look_does_not_replace_the_newer_next_fire_times(
    context: BrowserContext, server: Server, tokens: Tokens
) -> None:
    """The schedule's help is asked for by three fields; an answer that comes back after
    a newer question's (a slow network, a busy server) must not show stale times."""
    page = context.new_page()
    sign_in(page, server, tokens("alice"))
    held: list[Route] = []

    def hold_looks_without_a_start(route: Route) -> None:
        query = parse_qs(urlsplit(route.request.url).query, keep_blank_values=True)
        if query.get("start_at") == [""]:
            held.append(route)  # answered only after the newer look's answer is shown
        else:
            route.continue_()

    page.route("**/ui/validate?*", hold_looks_without_a_start)
    page.goto(f"{server.url}/schedules/new")
    page.get_by_label("Schedule").fill("every 10m")
    page.get_by_label("Time zone").fill("Asia/Tokyo")
    page.get_by_label("Start at").fill("2030-01-02T03:04:05")  # the zone's change: no start yet
    fresh = "Next: 2030-01-02 03:04:05 JST · 2030-01-02 03:14:05 JST"
    expect(page.locator("#schedule-help")).to_contain_text(fresh)
    assert held, "the zone's look was not held"
    for route in held:
        with contextlib.suppress(Exception):  # the page may have given it up already
            route.continue_()
    page.wait_for_timeout(500)  # room for a late answer to land
    expect(page.locator("#schedule-help")).to_contain_text(fresh)
