"""Schedule bodies kept by revision (``tickwork.api.bodies``): a get or a list after
another process changed a schedule, in any way, shows the change at once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg

import tests.api.api_tasks  # noqa: F401  (registers api:echo)
from tests.api.conftest import Server
from tickwork.api import paging
from tickwork.api.bodies import ScheduleBodies
from tickwork.api.encode import schedule_json
from tickwork.engine.registry import REGISTRY
from tickwork.engine.scheduler import Scheduler
from tickwork.models import Schedule
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter


def _raw_update(db_url: str, sql: str) -> None:
    """An UPDATE by a plain connection of this process (not the server's): the
    database's triggers alone change the row's revision."""
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(sql)
        conn.close()
    else:
        with psycopg.connect(db_url, autocommit=True) as pg:
            pg.execute(sql.encode())


async def _elsewhere(db_url: str, step: str) -> None:
    """A change through another process's ``Scheduler`` (this test's, not the server's)."""
    async with Scheduler(db_url, engine=False, registry=REGISTRY) as s:
        if step == "pause":
            await s.pause("b")
        elif step == "delete":
            await s.delete_schedule("b")
        elif step == "add":
            await s.add_schedule("api:echo", "0 3 * * *", id="b", owner="admin", name="again")


def test_get_and_list_show_changes_made_by_another_process(db_server: Server) -> None:
    c = db_server.admin
    for sid in ("a", "b", "c"):
        body = {"id": sid, "task": "api:echo", "schedule": "0 3 * * *"}
        assert c.post("/schedules", json=body).is_success

    def listed() -> dict[str, dict[str, object]]:
        r = c.get("/schedules", params={"limit": 50})
        assert r.status_code == 200, r.text
        return {item["id"]: item for item in r.json()["items"]}

    first = listed()
    assert c.get("/schedules/b").json() == first["b"]  # both now served as kept

    asyncio.run(_elsewhere(db_server.db_url, "pause"))
    got = c.get("/schedules/b")
    assert got.json()["status"] == "paused" and got.json()["paused"] is True
    assert got.headers["ETag"] == f'"{got.json()["version"]}"' != '"1"'
    assert listed()["b"] == got.json()

    # Not through tickwork at all: a column the API shows, changed by hand.
    _raw_update(db_server.db_url, "UPDATE schedules SET description = 'by hand' WHERE id = 'c'")
    assert c.get("/schedules/c").json()["description"] == "by hand"
    assert listed()["c"]["description"] == "by hand"
    assert listed()["a"] == first["a"]

    asyncio.run(_elsewhere(db_server.db_url, "delete"))
    assert c.get("/schedules/b").status_code == 404
    assert set(listed()) == {"a", "c"}

    # The same id again: a new row, whatever revision the old one had.
    asyncio.run(_elsewhere(db_server.db_url, "add"))
    again = c.get("/schedules/b").json()
    assert again["name"] == "again" and again["schedule"] == "0 3 * * *"
    assert listed()["b"] == again


def test_fires_show_in_the_next_get(db_server: Server) -> None:
    """The engine's own writes (next fire, last fire, executions) move the body too."""
    c = db_server.admin
    assert c.post("/schedules", json={"id": "tick", "task": "api:echo", "schedule": "every 1s"})
    seen = c.get("/schedules/tick").json()  # kept from now on
    for _ in range(100):
        now = c.get("/schedules/tick").json()
        if now["execution_count"] > seen["execution_count"]:
            break
        time.sleep(0.1)
    assert now["execution_count"] > seen["execution_count"] and now["last_fire_at"] is not None
    assert now["next_fire_at"] != seen["next_fire_at"]
    listed = {i["id"]: i for i in c.get("/schedules").json()["items"]}
    assert listed["tick"]["execution_count"] >= now["execution_count"]


async def test_bodies_are_made_once_per_revision_and_bounded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    async with Scheduler(url, engine=False, registry=REGISTRY) as s:
        for k in range(3):
            await s.add_schedule("api:echo", "1h", id=f"s{k}", owner="admin")
        bodies = ScheduleBodies(size=2)
        page = await bodies.page(s, ALL_SCHEDULES)
        assert [sid for sid, _ in page] == ["s0", "s1", "s2"]
        assert (bodies.hits, bodies.misses) == (0, 3)
        assert len(bodies.revisions) == 2  # the oldest dropped
        stored = await s.get_schedule("s2")
        assert page[2][1].json == schedule_json(stored)
        assert (await bodies.page(s, ScheduleFilter(after_id="s0"))) == page[1:]
        assert (bodies.hits, bodies.misses) == (2, 3)
        # s0 was dropped; keeping it drops s1 and then s2, which the store was told
        # were held: each is read again, not lost.
        assert (await bodies.page(s, ALL_SCHEDULES)) == page
        assert (bodies.hits, bodies.misses) == (2, 6)
        await s.update_schedule("s2", name="renamed")
        body = await bodies.one(s, "s2")
        assert body is not None and body.json == schedule_json(await s.get_schedule("s2"))
        assert body.version == 2 and bodies.misses == 7
        assert await bodies.one(s, "missing") is None


async def test_a_kept_page_is_served_only_while_the_store_answers_the_same(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    async with Scheduler(url, engine=False, registry=REGISTRY) as s:
        for k in range(3):
            await s.add_schedule("api:echo", "1h", id=f"s{k}", owner="admin")
        bodies = ScheduleBodies()

        async def page(filters: ScheduleFilter) -> dict[str, Any]:
            listed: dict[str, Any] = json.loads(await bodies.page_json(s, filters))
            return listed

        def expected(items: list[Schedule], cursor: str | None) -> dict[str, Any]:
            return {"items": [json.loads(schedule_json(i)) for i in items], "next_cursor": cursor}

        two = ScheduleFilter(limit=2)
        first = await page(two)
        stored = [await s.get_schedule(f"s{k}") for k in range(3)]
        assert first == expected(stored[:2], paging.encode("s", "s1"))
        assert (await page(two)) == first and bodies.page_hits == 1
        assert (await page(ScheduleFilter(limit=2, after_id="s1"))) == expected(stored[2:], None)

        await s.update_schedule("s1", name="renamed")  # a row of the page: a new body
        renamed = await s.get_schedule("s1")
        assert (await page(two)) == expected([stored[0], renamed], paging.encode("s", "s1"))
        assert bodies.page_hits == 1
        assert (await page(two))["items"][1]["name"] == "renamed" and bodies.page_hits == 2

        await s.delete_schedule("s0")  # the page moves up: s2 joins it, no cursor
        assert (await page(two)) == expected([renamed, stored[2]], None)
        await s.add_schedule("api:echo", "1h", id="s00", owner="admin")  # one ahead of it
        added = await s.get_schedule("s00")
        assert (await page(two)) == expected([added, renamed], paging.encode("s", "s1"))
        assert bodies.page_hits == 2
