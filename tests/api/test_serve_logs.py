"""``tickwork serve`` logs like ``tickwork worker``: every line on stderr in the node's
format, the HTTP server's own lines (start, requests, stop) included; with
``--log-format json`` every line parses."""

from __future__ import annotations

import json
import signal

import pytest

from tests.api.conftest import StartServer


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_http_servers_lines_are_in_the_nodes_format(
    fmt: str, sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(sqlite_url, args=("--log-format", fmt))
    assert server.admin.get("/schedules").status_code == 200
    assert server.stop(signal.SIGTERM) == 0
    stderr = server.stderr()
    request = '"GET /api/v1/schedules HTTP/1.1" 200'
    # Requests are logged on stderr with the rest of the node's log, not on stdout.
    assert not any(request in line for line in server.stdout)
    if fmt == "text":
        assert any(
            " INFO    uvicorn.access: " in line and request in line for line in stderr.splitlines()
        ), stderr
        assert not any(line.startswith("INFO:") for line in stderr.splitlines()), stderr
        return
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line parses
    loggers = {e["logger"] for e in lines}
    assert {"tickwork.engine", "uvicorn.error", "uvicorn.access"} <= loggers, loggers
    assert any(e["logger"] == "uvicorn.access" and request in e["message"] for e in lines)


def test_without_the_access_log_requests_are_not_logged_and_the_rest_is(
    sqlite_url: str, serve_api: StartServer
) -> None:
    """``--no-access-log``: no line per request (a proxy in front logs them); the
    server's start and stop and the engine's lines are still there."""
    server = serve_api(sqlite_url, args=("--no-access-log",))
    assert server.admin.get("/schedules").status_code == 200
    assert server.admin.get("/schedules/missing").status_code == 404
    assert server.stop(signal.SIGTERM) == 0
    stderr = server.stderr()
    assert "uvicorn.access" not in stderr, stderr
    assert "GET /api/v1/schedules" not in stderr, stderr
    assert " uvicorn.error: " in stderr, stderr  # the HTTP server's own lines
    assert " tickwork.engine: " in stderr, stderr
