"""A running attempt's log lines reach the database while it runs, on every executor,
so any process reading the run (a dashboard, the API) sees them before it ends; its end
stores each line once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.engine import live_log_tasks
from tests.engine.conftest import eventually
from tickwork import Scheduler
from tickwork.store import open_store

pytestmark = pytest.mark.timeout(60)


def touch(path: str) -> None:
    Path(path).touch()


@pytest.fixture
async def node(db_url: str) -> AsyncIterator[Scheduler]:
    async with Scheduler(db_url, registry=live_log_tasks.registry, shutdown_grace=1) as s:
        yield s


@pytest.mark.parametrize("executor", ["thread", "async", "process"])
async def test_lines_are_stored_while_the_attempt_runs(
    node: Scheduler, db_url: str, tmp_path: Path, executor: str
) -> None:
    gate = str(tmp_path / "gate")
    await node.add_schedule(f"steps_{executor}", "manual", id="s", data={"gate": gate})
    run = await node.run_now("s")
    reader = open_store(db_url)  # another connection, as a dashboard's process has
    try:

        async def shown(text: str) -> bool:
            found = reader.get_run(run.id)
            assert found is not None
            return found.status == "running" and any(r.message == text for r in found.logs)

        await eventually(lambda: shown("first step done"), 10, "the first line, live")
        touch(gate + ".1")
        await eventually(lambda: shown("second step done"), 10, "the second line, live")
        touch(gate + ".2")

        async def ended() -> bool:
            found = reader.get_run(run.id)
            return found is not None and found.status == "succeeded"

        await eventually(ended, 10, "the run's end")
        final = reader.get_run(run.id)
        assert final is not None
        assert [r.message for r in final.logs] == ["first step done", "second step done"]
    finally:
        reader.close()
