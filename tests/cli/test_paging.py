"""``list`` pages through schedules (``--limit``, ``--after``) and ``next`` merges the
next fires of many schedules read from the index of next fire times."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from tests.cli.conftest import Cli
from tickwork import Scheduler, TaskRegistry, task

registry = TaskRegistry()


@task("page:noop", registry=registry)
async def noop() -> None:
    return None


def _add(db_url: str, count: int) -> datetime:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

    async def add() -> None:
        async with Scheduler(db_url, registry=registry, engine=False) as s:
            for i in range(count):
                # Fire order is the reverse of id order: next must not follow ids.
                await s.add_schedule(
                    "page:noop",
                    "every 1h",
                    id=f"s{i:03d}",
                    start_at=start + timedelta(seconds=count - i),
                )

    asyncio.run(add())
    return start


def test_list_pages_with_limit_and_after(cli: Cli) -> None:
    _add(cli.db_url, 25)
    first = cli("--json", "list", "--limit", "10")
    page = [s["id"] for s in json.loads(first.stdout)]
    assert page == [f"s{i:03d}" for i in range(10)]
    assert "tickwork list --after s009" in first.stderr
    seen = list(page)
    while True:
        proc = cli("--json", "list", "--limit", "10", "--after", seen[-1])
        page = [s["id"] for s in json.loads(proc.stdout)]
        seen += page
        if "--after" not in proc.stderr:
            break
    assert seen == [f"s{i:03d}" for i in range(25)]
    assert "--limit must be between 1 and 100000" in cli.error("list", "--limit", "0", code=2)


def test_next_merges_fires_in_time_order_across_pages(cli: Cli) -> None:
    start = _add(cli.db_url, 150)  # more than one page of the index read
    fires = cli.json("next", "--count", "5")
    assert [f["schedule_id"] for f in fires] == ["s149", "s148", "s147", "s146", "s145"]
    assert fires[0]["fire_at"] == (start + timedelta(seconds=1)).isoformat()
    many = cli.json("next", "--count", "300")
    times = [f["fire_at"] for f in many]
    assert times == sorted(times) and len(many) == 300
    # The second hour of fires follows the first for every schedule.
    assert many[150]["schedule_id"] == "s149"
