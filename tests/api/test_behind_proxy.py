"""Behind a reverse proxy: the client's address is the one a trusted proxy forwards
(``trusted_proxies``), so the rate limit of unproven credentials counts each client,
not the proxy; a client that is not a trusted proxy cannot pick its address by sending
``X-Forwarded-For``."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server, StartServer, serve_refusal


def made_up_codes(server: Server, source: str, forwarded: str, n: int) -> list[int]:
    """Status codes of ``n`` requests with made-up tokens from ``source`` (a loopback
    address of this host), each saying it forwards for ``forwarded``."""
    client = server.client(
        "",
        transport=httpx.HTTPTransport(local_address=source),
        headers={"X-Forwarded-For": forwarded},
    )
    return [
        client.get("/schedules", headers={"Authorization": f"Bearer made-up-{i}"}).status_code
        for i in range(n)
    ]


def test_a_proxy_on_this_host_forwards_each_clients_address(
    sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "3"})
    assert made_up_codes(server, "127.0.0.1", "203.0.113.7", 4) == [401, 401, 401, 429]
    # Another client behind the same proxy has a budget of its own.
    assert made_up_codes(server, "127.0.0.1", "203.0.113.8", 1) == [401]


def test_only_trusted_proxies_are_believed(sqlite_url: str, serve_api: StartServer) -> None:
    server = serve_api(sqlite_url, env={"TICKWORK_RATE_LIMIT": "3"})
    # 127.0.0.2 is not a trusted proxy by default: what it says it forwards is not
    # believed, and a new X-Forwarded-For each time escapes nothing.
    codes = [made_up_codes(server, "127.0.0.2", f"203.0.113.{i}", 1)[0] for i in range(5)]
    assert codes == [401, 401, 401, 429, 429], codes


def test_trusted_proxies_names_the_proxies_in_front(
    sqlite_url: str, serve_api: StartServer
) -> None:
    server = serve_api(
        sqlite_url,
        env={"TICKWORK_RATE_LIMIT": "3"},
        args=("--trusted-proxies", "127.0.0.2/32, 10.0.0.0/8"),
    )
    assert made_up_codes(server, "127.0.0.2", "203.0.113.7", 4) == [401, 401, 401, 429]
    assert made_up_codes(server, "127.0.0.2", "203.0.113.8", 1) == [401]
    # Only the proxies named: this host's own address is no longer one (its budget
    # also paid for the server's start-up checks, so fewer than 3 may be left).
    codes = [made_up_codes(server, "127.0.0.1", f"198.51.100.{i}", 1)[0] for i in range(4)]
    assert codes[-1] == 429 and codes.count(401) <= 3, codes


def test_a_trusted_proxy_that_is_no_address_is_refused(sqlite_url: str) -> None:
    stderr = serve_refusal(sqlite_url, "--trusted-proxies", "127.0.0.1,proxy.internal")
    assert "trusted_proxies" in stderr and "'proxy.internal'" in stderr, stderr
    assert "is not an IP address" in stderr, stderr
