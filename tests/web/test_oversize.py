"""A dashboard form over the server's body limit answers the dashboard's own page (413)
saying nothing was saved and what the limit is, while the REST API and other clients
keep the API's JSON 413: real HTTP against ``tickwork serve``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from tests.api.conftest import Server, StartServer, serve_api
from tickwork.web.oversize import size_text

LIMIT = 4000
__all__ = ["serve_api"]  # the fixture, for this package's tests
SAID = "Not saved: this server accepts at most 3.9 KiB (4,000 bytes) in one form"


@pytest.fixture
def server(sqlite_url: str, serve_api: StartServer) -> Server:
    return serve_api(
        sqlite_url,
        env={"TICKWORK_MAX_BODY": str(LIMIT), "TICKWORK_RATE_LIMIT": "0"},
        args=("--import", "tests.web.tasks"),
    )


@contextlib.contextmanager
def signed_in(server: Server, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/login", data={"token": token, "next": "/"})
        assert r.status_code == 303, r.text
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found[1]


def test_the_size_is_said_as_a_person_reads_it() -> None:
    assert size_text(1 << 20) == "1 MiB (1,048,576 bytes)"
    assert size_text(2_500_000) == "2.4 MiB (2,500,000 bytes)"
    assert size_text(LIMIT) == "3.9 KiB (4,000 bytes)"
    assert size_text(512) == "512 bytes"


def test_an_oversize_schedule_form_shows_the_form_again_with_why(server: Server) -> None:
    admin_token = server.admin_token
    assert admin_token is not None
    with signed_in(server, admin_token) as client:
        form = client.get("/schedules/new")
        fields = {
            "csrf": csrf(form.text),
            "task": "reports:daily",
            "schedule": "0 2 * * *",
            "timezone": "UTC",
            "data": '{"region": "' + "x" * 5000 + '"}',
        }
        r = client.post("/schedules/new", data=fields)
        assert r.status_code == 413
        assert r.headers["content-type"].startswith("text/html")
        text = unescape(r.text)
        assert SAID in text and "the form sent is 5 KiB (" in text
        assert re.search(r"<h1>New schedule</h1>", r.text)  # the form, shown again
        assert 'action="/schedules/new"' in r.text
        assert "Content-Security-Policy" in r.headers

        # A form posted as multipart, without a Content-Length (streamed): the same page.
        def parts() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="data"\r\n\r\n'
            for _ in range(10):
                yield b"y" * 500
            yield b"\r\n--b--\r\n"

        r = client.post(
            "/schedules/new",
            content=parts(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413
        assert "the form sent is larger than that" in unescape(r.text)
        # An edit: its form again, with the schedule's stored values.
        fields["data"] = '{"region": "eu"}'
        fields["id"] = "nightly"
        assert client.post("/schedules/new", data=fields).status_code == 303
        page = client.get("/schedules/nightly/edit")
        r = client.post(
            "/schedules/nightly/edit",
            data={**fields, "csrf": csrf(page.text), "description": "d" * 5000},
        )
        assert r.status_code == 413 and SAID in unescape(r.text)
        assert "<h1>Edit nightly</h1>" in r.text and 'value="UTC"' in r.text
        assert server.admin.get("/schedules/nightly").json()["description"] == ""
        # Any other form: the error page, leading back to the page it was sent from.
        r = client.post(
            "/schedules/nightly/run",
            data={"csrf": csrf(page.text), "data": "x" * 5000},
            headers={"Referer": f"{server.url}/schedules/nightly"},
        )
        assert r.status_code == 413 and SAID in unescape(r.text)
        assert "<h1>Form too large</h1>" in r.text
        assert '<a href="/schedules/nightly">Back to the page</a>' in r.text
        assert server.admin.get("/runs").json()["items"] == []
        # An htmx request: the fragment its target shows.
        r = client.post(
            "/schedules/nightly/run",
            data={"csrf": csrf(page.text), "data": "x" * 5000},
            headers={"HX-Request": "true"},
        )
        assert r.status_code == 413
        assert r.text.startswith('<p class="error" role="alert">Not saved:')


def test_a_form_sent_without_a_session_says_so_too(server: Server) -> None:
    """The sign-in form, or a form whose session ended: signing in would not help."""
    for path in ("/login", "/schedules/new"):
        r = httpx.post(f"{server.url}{path}", data={"token": "x" * 5000})
        assert r.status_code == 413, path
        assert SAID in unescape(r.text) and "<h1>Form too large</h1>" in r.text
        assert "Sign out" not in r.text


def test_the_rest_api_and_other_clients_keep_the_json_413(server: Server) -> None:
    big = {"task": "reports:daily", "schedule": "1h", "data": {"region": "x" * 5000}}
    r = server.admin.post("/schedules", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert r.json()["error"]["message"] == f"the request body is larger than {LIMIT} bytes"
    # Even a form-encoded body, or a browser's, under /api/.
    r = server.admin.post("/schedules", data={"x": "y" * 5000}, headers={"Accept": "text/html"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    # JSON to a dashboard address, from a client that asks for no page.
    r = httpx.post(f"{server.url}/schedules/new", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    # Under the limit: the API as before.
    big["data"] = {"region": "eu"}
    assert server.admin.post("/schedules", json=big).status_code == 201
