"""A run whose task has ended on the firing node is over for that node's next fire,
even while its end is not written yet (ends are batched; the database may be slow or
locked): an ``overlap="skip"`` schedule is not recorded ``skipped`` because of it."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

import psycopg

from tests.engine import tasks
from tests.engine.conftest import eventually
from tickwork import Scheduler

LOCK_HELD = 3.0  # seconds: the fires one and two seconds after the locked run happen meanwhile


async def _lock_a_running_run(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> datetime:
    """Lock (``FOR UPDATE``, in ``conn``'s open transaction) the row of a run of ``tick``
    whose task is running, so that its end cannot be written; its fire time."""
    for _ in range(1000):
        cur = await conn.execute(
            "SELECT id FROM runs WHERE schedule_id = 'tick' AND status = 'running'"
            " ORDER BY scheduled_for DESC LIMIT 1"
        )
        row = await cur.fetchone()
        if row is not None:
            cur = await conn.execute(
                "SELECT status, scheduled_for FROM runs WHERE id = %s FOR UPDATE", (row[0],)
            )
            locked = await cur.fetchone()
            if locked is not None and locked[0] == "running":
                at = locked[1]
                assert isinstance(at, datetime)
                return at
        await conn.rollback()  # its end was written first: take the next run
        await asyncio.sleep(0.01)
    raise AssertionError("no run of 'tick' was seen running")


async def test_a_fire_while_the_previous_end_cannot_be_written_is_not_skipped(
    pg_url: str,
) -> None:
    """Before: the fire one second after the locked run saw it ``running`` and recorded
    itself ``skipped`` (and the next one too), although its task had long ended."""
    async with Scheduler(pg_url, registry=tasks.registry, lease_ttl=30, shutdown_grace=2) as s:
        await s.add_schedule(
            "slow_async", "every 1s", id="tick", data={"seconds": 0.3}, overlap="skip"
        )
        conn = await psycopg.AsyncConnection.connect(pg_url)
        try:
            first = await _lock_a_running_run(conn)
            later = [first + timedelta(seconds=n) for n in (1, 2)]
            loop = asyncio.get_running_loop()
            release_at = loop.time() + LOCK_HELD
            seen: dict[datetime, str] = {}
            while loop.time() < release_at:
                # Read in the locking transaction (each statement sees what others
                # committed): the fires are inserts the lock does not hold back.
                cur = await conn.execute(
                    "SELECT scheduled_for, status FROM runs WHERE schedule_id = 'tick'"
                    " AND scheduled_for > %s",
                    (first,),
                )
                seen = {at: status for at, status in await cur.fetchall()}
                await asyncio.sleep(0.05)
            cur = await conn.execute(
                "SELECT status FROM runs WHERE scheduled_for = %s AND schedule_id = 'tick'",
                (first,),
            )
            still = await cur.fetchone()
        finally:
            await conn.rollback()  # the lock goes: the ends are written
            await conn.close()
        assert still == ("running",)  # its end really was held back all along
        for at in later:
            assert at in seen, f"no run fired at {at} while the lock was held: {seen}"
            assert seen[at] != "skipped", seen

        async def written() -> bool:
            runs = await s.list_runs("tick", limit=100)
            return all(
                r.status not in ("pending", "running") for r in runs if r.scheduled_for <= later[-1]
            )

        await eventually(written, timeout=10, what="every end written after the lock")
        runs = await s.list_runs("tick", limit=100)
    ended = sorted(
        (r for r in runs if r.status not in ("pending", "running")), key=lambda r: r.scheduled_for
    )
    times = [r.scheduled_for for r in ended]
    assert len(times) == len(set(times))  # exactly one run per fire time
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(times))
    assert first in times and all(at in times for at in later)
    assert {r.status for r in ended} == {"succeeded"}, [(r.scheduled_for, r.status) for r in ended]
    for r in ended:
        assert [a.status for a in r.attempts] == ["succeeded"]
