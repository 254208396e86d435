"""The REST API takes what the Python API takes, up to the same limits (tickwork.limits):
a schedule made from Python at a limit is one its GET body can PUT back, and one past a
limit is refused alike, naming the field."""

from __future__ import annotations

import asyncio
from typing import Any

import tests.api.api_tasks  # noqa: F401  (registers api:echo)
from tests.api.conftest import Server
from tickwork.engine.registry import REGISTRY
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import ValidationError
from tickwork.limits import MAX_EXECUTIONS, MAX_SHORT_TEXT

#: What the Python API takes, each at its limit.
AT_THE_LIMITS: dict[str, Any] = {
    "name": "n" * MAX_SHORT_TEXT,
    "owner": "o" * MAX_SHORT_TEXT,
    "result_queue": "r" * MAX_SHORT_TEXT,
    "error_queue": "e" * MAX_SHORT_TEXT,
    "max_executions": MAX_EXECUTIONS,
}


async def _add_from_python(db_url: str) -> None:
    async with Scheduler(db_url, engine=False, registry=REGISTRY) as s:
        await s.add_schedule("api:echo", "0 3 * * *", id="edge", **AT_THE_LIMITS)


def test_a_schedule_at_the_limits_goes_back_and_forth(db_server: Server) -> None:
    asyncio.run(_add_from_python(db_server.db_url))
    c = db_server.admin
    got = c.get("/schedules/edge")
    assert got.status_code == 200, got.text
    body = {k: v for k, v in got.json().items() if k in AT_THE_LIMITS}
    assert body == AT_THE_LIMITS
    # Before, the API refused what it had just shown: 500 characters at most for a
    # name, 200 for an owner or queue, 10^12 executions while the column holds 2^31-1.
    put = c.put(
        "/schedules/edge",
        json={"task": "api:echo", "schedule": "0 3 * * *", **body},
        headers={"If-Match": got.headers["ETag"]},
    )
    assert put.status_code == 200, put.text
    patched = c.patch("/schedules/edge", json={"schedule": "0 4 * * *"})
    assert patched.status_code == 200, patched.text
    created = c.post(
        "/schedules", json={"task": "api:echo", "schedule": "0 3 * * *", "name": "x" * 600}
    )
    assert created.status_code == 201, created.text


def test_past_a_limit_both_refuse_naming_the_field(db_server: Server) -> None:
    c = db_server.admin
    for field, value in [
        ("name", "n" * (MAX_SHORT_TEXT + 1)),
        ("owner", "o" * (MAX_SHORT_TEXT + 1)),
        ("result_queue", "r" * (MAX_SHORT_TEXT + 1)),
        ("max_executions", MAX_EXECUTIONS + 1),
    ]:
        r = c.post("/schedules", json={"task": "api:echo", "schedule": "0 3 * * *", field: value})
        assert r.status_code == 422, (field, r.text)
        assert field in r.text, (field, r.text)

        async def python(field: str = field, value: Any = value) -> str:
            async with Scheduler(db_server.db_url, engine=False, registry=REGISTRY) as s:
                try:
                    await s.add_schedule("api:echo", "0 3 * * *", **{field: value})
                except ValidationError as exc:
                    return str(exc)
            return "accepted"

        said = asyncio.run(python())
        assert field in said, (field, said)
