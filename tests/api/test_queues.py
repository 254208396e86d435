"""Queue messages over real HTTP: a list like the others, paged with ``limit`` and
``cursor``, with no message repeated or skipped while messages are added."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.api.conftest import Server


def _messages(c: httpx.Client, want: int) -> list[dict[str, Any]]:
    """The queue's messages once ``want`` are there (each run of ``out`` puts one)."""
    deadline = time.monotonic() + 15
    while True:
        items: list[dict[str, Any]] = c.get("/queues/out/messages", params={"limit": 500}).json()[
            "items"
        ]
        if len(items) >= want:
            return items
        assert time.monotonic() < deadline, items
        time.sleep(0.02)


def _run(c: httpx.Client, times: int) -> None:
    for _ in range(times):
        assert c.post("/schedules/q/run", json={}).status_code == 202


def test_queue_messages_page_with_a_cursor(db_server: Server) -> None:
    """On SQLite and PostgreSQL (their consuming SQL differs)."""
    c = db_server.admin
    body = {"task": "api:echo", "schedule": "manual", "result_queue": "out"}
    assert c.put("/schedules/q", json=body).status_code == 201
    _run(c, 5)
    ids = [m["id"] for m in _messages(c, 5)]
    assert len(ids) == 5 and ids == sorted(ids)

    first = c.get("/queues/out/messages", params={"limit": 2}).json()
    assert [m["id"] for m in first["items"]] == ids[:2] and first["next_cursor"]
    _run(c, 2)  # added while paging: at the end, after the pages already read
    ids = [m["id"] for m in _messages(c, 7)]
    seen = [m["id"] for m in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = c.get("/queues/out/messages", params={"limit": 2, "cursor": cursor}).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids  # every message once, in order
    whole = c.get("/queues/out/messages", params={"limit": 7}).json()
    assert whole["next_cursor"] is None  # a page that ends the queue says so

    # Consuming pages alike: each page is removed, its cursor goes on after it.
    taken = c.get("/queues/out/messages", params={"limit": 3, "consume": "true"}).json()
    assert [m["id"] for m in taken["items"]] == ids[:3] and taken["next_cursor"]
    rest = c.get(
        "/queues/out/messages",
        params={"limit": 4, "consume": "true", "cursor": taken["next_cursor"]},
    ).json()
    assert [m["id"] for m in rest["items"]] == ids[3:] and rest["next_cursor"] is None
    assert c.get("/queues/out/messages").json() == {"items": [], "next_cursor": None}

    bad = c.get("/queues/out/messages", params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "cursor"


def test_queue_messages_default_to_pages_of_50(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    route = spec["paths"]["/api/v1/queues/{name}/messages"]["get"]
    limit = next(p for p in route["parameters"] if p["name"] == "limit")
    assert limit["schema"]["default"] == 50 and limit["schema"]["maximum"] == 500


def test_tasks_and_nodes_page_like_every_list(server: Server) -> None:
    """``/tasks`` and ``/nodes`` are lists too: ``limit`` and ``cursor`` page them (by
    name, by node id), where before either parameter was refused as unknown."""
    c = server.admin
    every = [t["name"] for t in c.get("/tasks", params={"limit": 500}).json()["items"]]
    assert len(every) >= 3 and every == sorted(every)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = c.get("/tasks", params=params)
        assert page.status_code == 200, page.text
        seen += [t["name"] for t in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert seen == every
    nodes = c.get("/nodes", params={"limit": 1}).json()
    assert len(nodes["items"]) == 1 and nodes["next_cursor"] is None  # one node here
    assert c.get("/tasks", params={"cursor": "nope"}).status_code == 422
