"""Schedules are serialized straight from the stored record (``tickwork.api.encode``):
the bytes must be those of ``ScheduleOut``, field for field, number for number."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tickwork.api.encode import page_json, schedule_json, schedule_page_json
from tickwork.api.schemas import Page, ScheduleOut
from tickwork.engine.registry import TaskRegistry, task
from tickwork.engine.scheduler import Scheduler


def _canonical(body: bytes) -> str:
    # Key order aside, the same text: 0 and 0.0 stay apart, as do "Z" and "+00:00".
    return json.dumps(json.loads(body), sort_keys=True)


def _model(s: Any) -> bytes:
    return ScheduleOut.of(s).model_dump_json().encode()


async def test_schedule_bodies_are_those_of_the_response_model(tmp_path: Path) -> None:
    registry = TaskRegistry()

    @task("enc:job", registry=registry)
    def job(n: int = 0, nested: object = None) -> None:
        pass

    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with Scheduler(f"sqlite:///{tmp_path / 'enc.db'}", engine=False, registry=registry) as s:
        await s.add_schedule("enc:job", "every 10s", id="plain")
        await s.add_schedule(
            "enc:job",
            "0 9 * * mon-fri",
            id="full",
            name="Réport ☃",
            description='quotes " and \\ and\nlines',
            timezone="Europe/Paris",
            data={"n": 3, "nested": {"a": [1, 2.5, None, True]}},
            start_at=start,
            end_at=start + timedelta(days=3, microseconds=1),
            jitter=2,
            overlap="queue",
            catchup="all",
            max_instances=3,
            max_executions=10,
            retry={"max_attempts": 5, "delay": 1, "jitter": False},
            timeout=7,
            priority=-4,
            result_queue="out",
            tags=["a", "b"],
            metadata={"team": "x"},
            owner="alice",
        )
        await s.pause("plain")
        found = await s.list_schedules()
    assert [f.id for f in found] == ["full", "plain"]
    for schedule in found:
        body = schedule_json(schedule)
        assert _canonical(body) == _canonical(_model(schedule))
        assert set(json.loads(body)) == set(ScheduleOut.model_fields)
    page = schedule_page_json(found, "next-one")
    expected = Page[ScheduleOut](items=[ScheduleOut.of(f) for f in found], next_cursor="next-one")
    assert _canonical(page) == _canonical(expected.model_dump_json().encode())
    assert json.loads(schedule_page_json([], None)) == {"items": [], "next_cursor": None}
    # A page put together from bodies serialized one by one is the same bytes.
    assert page_json([schedule_json(f) for f in found], "next-one") == page
    assert page_json([], None) == schedule_page_json([], None)
