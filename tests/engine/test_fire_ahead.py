"""Fires prepared ahead of their time: the work is done before the fire time, the commit
held until it, so runs start at their time; nothing shows, and nothing runs, earlier."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.engine import tasks
from tests.engine.conftest import T0, eventually
from tickwork import Scheduler, TaskRegistry, task
from tickwork.clock import ManualClock
from tickwork.engine import ahead, firing
from tickwork.engine.config import EngineConfig
from tickwork.models import Run

DUE = T0 + timedelta(seconds=10)


async def test_runs_are_committed_and_started_at_their_time(
    db_url: str, clock: ManualClock
) -> None:
    tasks.calls.clear()
    async with Scheduler(db_url, registry=tasks.registry, clock=clock) as s:
        engine = s.engine
        assert engine is not None
        for i in range(5):
            await s.add_schedule("noop", DUE.isoformat(), id=f"a{i}")
        clock.set(DUE - timedelta(seconds=engine.config.fire_ahead / 2))

        async def prepared() -> bool:
            return engine.ahead.prepared > 0

        await eventually(prepared, what="the fire prepared")
        # Read on another connection: only what is committed shows.
        assert [await s.list_runs(f"a{i}") for i in range(5)] == [[]] * 5
        assert tasks.calls == []
        clock.set(DUE)

        async def done() -> bool:
            runs = [r for i in range(5) for r in await s.list_runs(f"a{i}")]
            return len(runs) == 5 and all(r.status == "succeeded" for r in runs)

        await eventually(done, what="5 runs succeeded")
        for i in range(5):
            (run,) = await s.list_runs(f"a{i}")
            assert run.scheduled_for == run.started_at == run.attempts[0].started_at == DUE
    assert len(tasks.calls) == 5


def _write_locked(path: str) -> bool:
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


async def test_a_node_stopping_before_the_time_rolls_its_prepared_fire_back(
    sqlite_url: str,
) -> None:
    """The prepared fire holds SQLite's write lock until its time; a stop meanwhile
    rolls it back, and the schedule fires once, later, on the next node."""
    clock = ManualClock(T0)
    path = sqlite_url.removeprefix("sqlite:///")
    tasks.calls.clear()
    async with Scheduler(sqlite_url, registry=tasks.registry, clock=clock) as s:
        engine = s.engine
        assert engine is not None
        await s.add_schedule("noop", DUE.isoformat(), id="a")
        clock.set(DUE - timedelta(seconds=engine.config.fire_ahead / 2))

        async def holding() -> bool:
            return _write_locked(path)

        await eventually(holding, what="the prepared fire holding the write lock")
    assert not _write_locked(path)
    assert tasks.calls == []
    async with Scheduler(sqlite_url, registry=tasks.registry, clock=clock) as s:
        assert await s.list_runs("a") == []
        schedule = await s.get_schedule("a")
        assert (schedule.status, schedule.next_fire_at) == ("active", DUE)
        clock.set(DUE + timedelta(seconds=1))

        async def fired() -> bool:
            return [r.status for r in await s.list_runs("a")] == ["succeeded"]

        await eventually(fired, what="the fire on the next node")
    assert len(tasks.calls) == 1


#: The wall-clock instant each run of ``stamp`` started (tests on the real clock).
stamps: list[float] = []
stamping = TaskRegistry()


@task("stamp", registry=stamping)
async def stamp() -> None:
    stamps.append(time.time())


async def test_on_the_real_clock_a_prepared_fire_commits_at_its_time_and_not_before(
    db_url: str,
) -> None:
    """The store thread waits for the fire time itself (``ahead._Hold``): nothing is
    visible nor started before it, the runs start at it."""
    stamps.clear()
    config = EngineConfig(fire_ahead=1.0)  # held for about a second: time to look
    async with Scheduler(db_url, registry=stamping, config=config) as s:
        engine = s.engine
        assert engine is not None
        due = (datetime.now(UTC) + timedelta(seconds=1.2)).replace(microsecond=0)
        due += timedelta(seconds=1)  # a whole second: exact in both databases
        for i in range(3):
            await s.add_schedule("stamp", due.isoformat(), id=f"a{i}")

        async def prepared() -> bool:
            return engine.ahead.prepared > 0

        await eventually(prepared, what="the fire prepared")
        assert [await s.list_runs(f"a{i}") for i in range(3)] == [[]] * 3
        assert stamps == []
        assert datetime.now(UTC) < due

        async def done() -> bool:
            runs = [r for i in range(3) for r in await s.list_runs(f"a{i}")]
            return len(runs) == 3 and all(r.status == "succeeded" for r in runs)

        await eventually(done, what="3 runs succeeded")
        for i in range(3):
            (run,) = await s.list_runs(f"a{i}")
            assert run.scheduled_for == run.started_at == due
    assert len(stamps) == 3 and min(stamps) >= due.timestamp()


async def test_on_the_real_clock_a_node_stopping_while_its_fire_is_held_rolls_it_back_at_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop releases the store thread waiting for the fire time: the fire is rolled
    back then, not when its time comes, and the next node fires it."""
    stamps.clear()
    #: When the store thread holding the prepared fire went on, and whether it committed.
    went_on: list[tuple[datetime, bool]] = []

    class _NotedHold(ahead._Hold):
        def __call__(self) -> bool:
            commit = super().__call__()
            went_on.append((datetime.now(UTC), commit))
            return commit

    monkeypatch.setattr(ahead, "_Hold", _NotedHold)
    config = EngineConfig(fire_ahead=1.0)
    async with Scheduler(db_url, registry=stamping, config=config) as s:
        engine = s.engine
        assert engine is not None
        # A whole second (exact in both databases), 2 to 3 s ahead: the fire is
        # prepared and held for its last second, however long the node took to start.
        due = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        await s.add_schedule("stamp", due.isoformat(), id="a")

        async def prepared() -> bool:
            return engine.ahead.prepared > 0

        await eventually(prepared, timeout=30, what="the fire prepared")
    # Released by the stop, before the fire time it would otherwise have waited for.
    ((at, committed),) = went_on
    assert not committed
    assert at < due
    assert stamps == []
    async with Scheduler(db_url, registry=stamping) as s:
        assert await s.list_runs("a") == []
        schedule = await s.get_schedule("a")
        assert (schedule.status, schedule.next_fire_at) == ("active", due)

        async def fired() -> bool:
            return [r.status for r in await s.list_runs("a")] == ["succeeded"]

        await eventually(fired, timeout=30, what="the fire on the next node")
    assert len(stamps) == 1


async def test_all_that_is_due_at_a_time_is_prepared_in_one_fire(
    db_url: str, clock: ManualClock
) -> None:
    """Counted when reading ahead, every schedule due at the time goes into the
    prepared fire, however small ``fire_batch`` is; none is left to fire after it."""
    tasks.calls.clear()
    config = EngineConfig(max_concurrent=500, fire_batch=10)
    async with Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as s:
        engine = s.engine
        assert engine is not None
        for i in range(300):
            await s.add_schedule("noop", DUE.isoformat(), id=f"a{i}")
        clock.set(DUE - timedelta(seconds=0.5))  # reads ahead and counts

        async def counted() -> bool:
            return engine.ahead.due_count == (DUE, 300)

        await eventually(counted, what="the due schedules counted")
        clock.set(DUE - timedelta(seconds=engine.config.fire_ahead / 2))

        async def prepared() -> bool:
            return engine.ahead.prepared > 0

        await eventually(prepared, what="the fire prepared")
        clock.set(DUE)

        async def started() -> bool:
            return len(tasks.calls) == 300

        await eventually(started, what="300 runs started")
        # Cut to fire_batch, the prepared fire would take 10 and leave 290 for 29 more.
        assert (engine.ahead.prepared, engine.ahead.last_fired) == (1, 300)


async def _fire_four_between(
    first: Scheduler, second: Scheduler, clock: ManualClock, within: float = 5.0
) -> list[Run]:
    """Four ``noop`` runs due at ``DUE``, fired ahead by either node (a node fires what
    it cannot run too); returns them once all succeeded, within ``within`` seconds."""
    assert first.engine is not None and second.engine is not None
    engines = (first.engine, second.engine)
    for i in range(4):
        await first.add_schedule("noop", DUE.isoformat(), id=f"a{i}")
    clock.set(DUE - timedelta(seconds=0.05))

    async def prepared() -> bool:
        return sum(e.ahead.prepared for e in engines) > 0

    await eventually(prepared, what="a fire prepared")
    clock.set(DUE)

    async def runs() -> list[Run]:
        return [r for i in range(4) for r in await first.list_runs(f"a{i}")]

    async def done() -> bool:
        got = await runs()
        return len(got) == 4 and all(r.status == "succeeded" for r in got)

    await eventually(done, timeout=within, what="4 runs succeeded")
    return await runs()


async def test_a_node_that_fired_gives_its_peer_a_head_start_on_the_rest(
    db_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a peer alive, the node whose prepared fire creates the runs claims its
    share (half) and leaves the peer time to claim the rest. Its next look came at once
    after the fire and took the rest too: under load one node ran every run."""
    monkeypatch.setattr(firing, "PEER_HEAD_START", 2.0)  # the peer's wake-up, with room
    tasks.calls.clear()
    config = EngineConfig(maintenance_interval=3600)  # peers counted at start only
    async with (
        Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as first,
        Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as second,
    ):
        assert first.engine is not None and second.engine is not None
        await first.engine.upkeep.maintenance_once()  # it started before the second
        assert first.engine.core.shares["noop"] == second.engine.core.shares["noop"] == 0.5
        nodes = Counter(r.node for r in await _fire_four_between(first, second, clock))
    assert sorted(nodes.values()) == [2, 2], nodes


async def test_runs_of_a_task_no_peer_runs_are_claimed_whole_and_at_once(
    db_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live peer that does not run the task gets no share of its runs, and no head
    start: they would wait for it in vain."""
    monkeypatch.setattr(firing, "PEER_HEAD_START", 2.0)
    tasks.calls.clear()
    others = TaskRegistry()

    @task("other", registry=others)
    async def other() -> None:
        pass

    config = EngineConfig(maintenance_interval=3600)
    async with (
        Scheduler(db_url, registry=tasks.registry, clock=clock, config=config) as first,
        Scheduler(db_url, registry=others, clock=clock, config=config) as second,
    ):
        assert first.engine is not None and second.engine is not None
        await first.engine.upkeep.maintenance_once()  # it started before the second
        assert len(await first.nodes()) == 2
        assert first.engine.core.shares == second.engine.core.shares == {}
        # Well within the head start: no run waited for the peer.
        runs = await _fire_four_between(first, second, clock, within=1.5)
        assert {r.node for r in runs} == {first.engine.core.node_id}


async def test_a_run_due_just_ahead_neither_holds_the_node_nor_spins_it(
    db_url: str, clock: ManualClock
) -> None:
    """A wake-up time that is a run's due time (a jittered start, a retry), not a
    fire's, has nothing to prepare: the node sleeps until it as until any other, and
    starts what comes meanwhile. (On an injected clock it waited for that time, which
    never came; on the real clock it would have asked the store again and again.)"""
    tasks.calls.clear()
    async with Scheduler(db_url, registry=tasks.registry, clock=clock) as s:
        engine = s.engine
        assert engine is not None
        await s.add_schedule("noop", "manual", id="soon")
        await s.add_schedule("noop", "manual", id="now")
        now = clock.now()
        soon = Run(
            id="due-soon",
            schedule_id="soon",
            task="noop",
            scheduled_for=now,
            trigger="manual",
            due_at=now + timedelta(seconds=engine.config.fire_ahead / 2),
            created_at=now,
        )
        fires = engine.firing.fires
        await asyncio.to_thread(s.store.insert_runs, [soon])
        engine.wake()

        async def looked_ahead() -> bool:
            return engine.firing.fires > fires

        await eventually(looked_ahead, what="a fire prepared for the run's due time")
        run = await s.run_now("now", wait=True, timeout=10)
        assert run.status == "succeeded"
        # Closer to the time than a fire is prepared ahead, even a dense one's.
        clock.set(soon.due_at - timedelta(seconds=0.001))
        settled = engine.firing.fires
        await asyncio.sleep(0.3)
        assert engine.firing.fires - settled <= 2  # asleep: not asking again and again
        assert (await s.get_run("due-soon")).status == "pending"  # its time has not come
        clock.set(soon.due_at)
        assert (await s.wait_for_run("due-soon", timeout=10)).status == "succeeded"
