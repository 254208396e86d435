"""One attempt end the database cannot store holds back no other: it is stored cleaned
(NUL and lone surrogates replaced, alike on both databases) or, when the database
refuses it for another reason, recorded failed with the database's reason; the other
ends of its batch are written as usual."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from tests.engine import tasks
from tests.engine.conftest import eventually
from tickwork import Scheduler
from tickwork.errors import ValidationError
from tickwork.limits import NUL_REPLACEMENT as R
from tickwork.models import Run


async def _runs(s: Scheduler, ids: list[str]) -> list[Run]:
    return [r for sid in ids for r in await s.list_runs(sid, limit=1000)]


async def test_a_nul_task_beside_every_second_schedules_on_postgres(pg_url: str) -> None:
    """Before: the batch of ends failed for twice the lease; every-second schedules piled
    up ``skipped``, other runs ended ``lost`` and the NUL run's error was hidden."""
    async with Scheduler(pg_url, registry=tasks.registry, lease_ttl=3, shutdown_grace=2) as s:
        ids = [f"every{i}" for i in range(20)]
        for sid in ids:
            await s.add_schedule("noop", "every 1s", id=sid)
        await s.add_schedule("nul_everywhere", "manual", id="poison")
        await s.add_schedule("nul_everywhere", "manual", id="poison_ok", data={"fail": False})
        await asyncio.sleep(1.2)
        bad = await s.run_now("poison")
        good = await s.run_now("poison_ok")
        started = time.monotonic()
        await asyncio.sleep(4.5)
        runs = await _runs(s, ids)
        statuses = {r.status for r in runs}
        assert "skipped" not in statuses and "lost" not in statuses, statuses
        assert len(runs) >= 20 * 4
        finished = [r for r in runs if r.status == "succeeded"]
        assert len(finished) >= 20 * 3

        async def ended() -> bool:
            return (await s.get_run(bad.id)).status in ("failed", "retrying")

        await eventually(ended, timeout=2, what="the NUL run's end")
        assert time.monotonic() - started < 7
        run = await s.get_run(bad.id)
        assert run.error == f"ValueError: bad{R}value {R}"
        assert run.attempts[0].status == "failed"
        assert run.attempts[0].error == run.error
        assert any(rec.message == f"log a{R}b" for rec in run.logs)
        ok = await s.get_run(good.id)
        assert ok.status == "succeeded"
        assert ok.result == {"text": f"a{R}b", f"k{R}": R}


@pytest.mark.parametrize("fail", [True, False])
async def test_task_text_is_stored_alike_on_both_databases(db_url: str, fail: bool) -> None:
    async with Scheduler(db_url, registry=tasks.registry, shutdown_grace=1) as s:
        await s.add_schedule(
            "nul_everywhere", "manual", id="p", data={"fail": fail}, retry={"max_attempts": 1}
        )
        run = await s.run_now("p", wait=True, timeout=10)
        if fail:
            assert run.status == "failed"
            assert run.error == f"ValueError: bad{R}value {R}"
            assert run.traceback is not None and "\x00" not in run.traceback
        else:
            assert run.status == "succeeded"
            assert run.result == {"text": f"a{R}b", f"k{R}": R}
        stored = await s.get_run(run.id)
        assert [rec.message for rec in stored.logs] == [f"log a{R}b"]


async def test_an_end_the_database_refuses_is_recorded_failed_alone(pg_url: str) -> None:
    """A value the database refuses for a reason tickwork cannot foresee (here a CHECK
    constraint on log lines): that run ends ``failed`` with the database's reason, and
    the ends written in the same batch are not held back."""
    async with Scheduler(pg_url, registry=tasks.registry, lease_ttl=3, shutdown_grace=1) as s:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE run_logs ADD CONSTRAINT refuse_marker"
                " CHECK (message NOT LIKE '%XYZZY%')"
            )
        await s.add_schedule("log_marker", "manual", id="refused", retry={"max_attempts": 1})
        await s.add_schedule("sync_echo", "manual", id="fine")
        runs = [await s.run_now("refused")] + [await s.run_now("fine") for _ in range(5)]
        started = time.monotonic()

        async def ended() -> bool:
            found = [await s.get_run(r.id) for r in runs]
            return all(r.status not in ("pending", "running") for r in found)

        await eventually(ended, timeout=5, what="every end written")
        assert time.monotonic() - started < 3  # not after a lease's worth of retries
        refused = await s.get_run(runs[0].id)
        assert refused.status == "failed"
        assert refused.error is not None
        assert "could not be stored" in refused.error and "refuse_marker" in refused.error
        assert refused.result is None and refused.logs == ()
        for r in runs[1:]:
            assert (await s.get_run(r.id)).status == "succeeded"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"data": {"k": "a\x00b"}}, "data"),
        ({"data": {"k\x00": 1}}, "data"),
        ({"metadata": {"k": ["\x00"]}}, "metadata"),
        ({"tags": ["ok", "a\x00"]}, "tags"),
        ({"description": "\x00"}, "description"),
    ],
)
async def test_nul_in_schedule_fields_is_a_validation_error(
    db_url: str, changes: dict[str, object], field: str
) -> None:
    async with Scheduler(db_url, registry=tasks.registry, engine=False) as s:
        with pytest.raises(ValidationError, match="NUL") as caught:
            await s.add_schedule("noop", "manual", id="n", **changes)  # type: ignore[arg-type]
        assert caught.value.field == field
        await s.add_schedule("noop", "manual", id="n")
        with pytest.raises(ValidationError, match="NUL") as caught:
            await s.update_schedule("n", **changes)
        assert caught.value.field == field
        with pytest.raises(ValidationError, match="NUL"):
            await s.run_now("n", data={"x": "\x00"})
