"""CLI writes are not starved by a node firing dense schedules on SQLite: a fire
prepared ahead holds the file's write lock only for about its own work, so a
``pause`` (the emergency stop) gets through in well under a second."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.conftest import Cli, Worker, wait_for
from tickwork import Scheduler


def _add_staggered(db_url: str) -> None:
    """Ten ``every 1s`` schedules whose fires are spread over the second (.0, .1, … .9)."""

    async def add() -> None:
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        async with Scheduler(db_url, engine=False) as s:
            for i in range(10):
                await s.add_schedule(
                    "cli:echo",
                    "every 1s",
                    id=f"s{i}",
                    start_at=base + timedelta(seconds=i / 10),
                )

    asyncio.run(add())


def test_cli_writes_get_through_while_fires_are_dense(cli: Cli, tmp_path: Path) -> None:
    worker = Worker(cli.db_url, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        _add_staggered(cli.db_url)
        wait_for(
            lambda: len(cli.json("history", "--schedule", "s9", "--limit", "5")) >= 2,
            15,
            "the schedules to fire",
        )
        # The same write on an idle file: what starting the CLI costs on this machine
        # now (about a second on a busy one), so only waiting for the lock is judged.
        idle = Cli(cli.db_url.replace("tickwork.db", "idle.db"))
        idle("db", "upgrade")
        started = time.monotonic()
        idle("pause")
        baseline = time.monotonic() - started
        timings: dict[str, float] = {}
        for name, args in (
            ("pause one", ("pause", "--id", "s3")),
            ("create", ("create", "--task", "cli:echo", "--schedule", "manual", "--id", "x")),
            ("update", ("update", "--id", "s4", "--name", "renamed")),
            ("pause all", ("pause",)),
        ):
            started = time.monotonic()
            cli(*args, timeout=20)
            timings[name] = time.monotonic() - started
    finally:
        worker.kill()
    # Before: 'pause' waited for the lock up to its 10 s busy timeout and failed.
    slow = {name: round(t, 2) for name, t in timings.items() if t - baseline >= 1.0}
    assert not slow, (
        f"CLI writes took too long: {timings} (idle: {baseline:.2f} s)\n{worker.output()[-2000:]}"
    )
