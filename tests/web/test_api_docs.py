"""The API's documentation page (``/docs``) works on a machine without internet: every
file it loads comes from the server itself, the vendored Swagger UI."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from tests.api.conftest import Server

pytestmark = [pytest.mark.e2e]
STATIC = resources.files("tickwork.web").joinpath("static")


def references(html: str) -> list[str]:
    """Every address the page makes the browser load: scripts, stylesheets, icons."""
    return re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]*)"', html)


def test_docs_loads_only_files_this_server_serves(server: Server) -> None:
    page = httpx.get(f"{server.url}/docs", timeout=10)  # no token: the page is public
    assert page.status_code == 200
    refs = references(page.text)
    assert len(refs) == 3, refs  # the stylesheet, the icon and the script
    fetched = {}
    for ref in refs:
        if ref.startswith("data:"):
            continue
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc and ref.startswith("/"), ref
        answer = httpx.get(server.url + ref, timeout=10)
        assert answer.status_code == 200, ref
        fetched[parts.path.rsplit("/", 1)[-1]] = answer
    assert set(fetched) == {"swagger-ui-bundle.js", "swagger-ui.css"}
    for name, answer in fetched.items():
        vendored = STATIC.joinpath(name).read_bytes()
        assert hashlib.sha256(answer.content).digest() == hashlib.sha256(vendored).digest()
        assert "immutable" in answer.headers["cache-control"]
    assert fetched["swagger-ui.css"].headers["content-type"].startswith("text/css")
    assert fetched["swagger-ui-bundle.js"].headers["content-type"].startswith("text/javascript")
    # The spec the page reads, and Swagger UI's OAuth2 return page, are here too.
    assert "url: '/openapi.json'" in page.text
    redirect = httpx.get(f"{server.url}/docs/oauth2-redirect", timeout=10)
    assert redirect.status_code == 200
    assert references(redirect.text) == []


def test_docs_renders_with_every_other_host_unreachable(
    context: BrowserContext, server: Server
) -> None:
    here = urlsplit(server.url).netloc
    elsewhere: list[str] = []

    def only_this_server(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == here or url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_this_server)
    page = context.new_page()
    page.goto(f"{server.url}/docs")
    expect(page.get_by_role("heading", name=re.compile(r"^tickwork"))).to_be_visible()
    expect(page.get_by_text("/api/v1/schedules/{schedule_id}/pause").first).to_be_visible()
    # Swagger UI's stylesheet applies: a GET operation wears its blue (#61affe).
    border = page.locator(".opblock-get").first.evaluate("e => getComputedStyle(e).borderColor")
    assert border == "rgb(97, 175, 254)"
    assert elsewhere == []


def test_every_api_operation_declares_the_bearer_token(server: Server) -> None:
    """So that /docs offers "Authorize" and sends the token with each call it tries."""
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            wanted = [{"bearer": []}] if path.startswith("/api/v1/") else None
            assert operation.get("security") == wanted, (method, path)
    assert "/health" in spec["paths"]  # in the schema, and open to anyone


def _authorize_and_list_tasks(page: Page, server: Server) -> Locator:
    """Authorize with the admin token, then "Try it out" on the task list: the
    operation's block, once it shows a 200."""
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.get_by_label("auth-bearer-value").fill(server.admin_token or "")
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close").click()
    tasks = page.locator("#operations-tasks-list_tasks_api_v1_tasks_get")
    tasks.locator(".opblock-summary").click()
    tasks.get_by_role("button", name="Try it out").click()
    tasks.get_by_role("button", name="Execute").click()
    status = tasks.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200")
    return tasks


def test_docs_calls_the_api_with_the_token_given_to_authorize(
    context: BrowserContext, server: Server
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/docs")
    tasks = _authorize_and_list_tasks(page, server)
    expect(tasks.locator(".live-responses-table")).to_contain_text("reports:daily")


def test_docs_has_a_csp_that_swagger_ui_works_under(
    context: BrowserContext, server: Server
) -> None:
    """The page (which takes a token in "Authorize") carries the dashboard's security
    headers: no framing by another site, and a Content-Security-Policy allowing only
    this server's files and the page's own inline script, by its hash. Swagger UI
    renders, authorizes and calls the API under it without one violation."""
    for path in ("/docs", "/docs/oauth2-redirect"):
        answer = httpx.get(f"{server.url}{path}", timeout=10)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path
        script_src = re.search(r"script-src ([^;]*)", policy)
        assert script_src is not None
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, path
        assert re.fullmatch(r"'self'( 'sha256-[A-Za-z0-9+/]+=*')+", script_src[1]), policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{server.url}/docs")
    _authorize_and_list_tasks(page, server)
    assert violations == []
