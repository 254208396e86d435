"""The store's own work for a burst, without the engine: CPU time of this process.

    python benchmarks/store_fire.py 2000

N one-time schedules due at once on a fresh SQLite file: read ahead (decoded), fired and
claimed in one ``fire_and_claim``, then ended in one ``finish_attempts``. Prints the CPU
milliseconds of each step as JSON: what the SQL store costs, apart from the event loop
and the tasks, so two trees can be compared on a busy machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from tickwork.models import AttemptOutcome, FirePlan, Run, Schedule
from tickwork.policy import plan_fire
from tickwork.schedule import parse_schedule
from tickwork.store import Store, open_store
from tickwork.store.base import ClaimRequest

T0 = datetime(2026, 1, 1, tzinfo=UTC)

Planner = Callable[[Schedule, Sequence[Run], datetime], FirePlan]


def one_time_schedules(store: Store, n: int) -> Planner:
    """Add ``n`` one-time schedules due at ``T0``; returns the planner that fires them."""
    for i in range(n):
        store.add_schedule(
            Schedule(
                id=f"s{i}",
                task="t",
                schedule=T0.isoformat(),
                next_fire_at=T0,
                created_at=T0,
                updated_at=T0,
                anchor=T0,
            )
        )
    parsed = parse_schedule(T0.isoformat())

    def plan(s: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        return plan_fire(s, parsed, active, now, lambda: uuid.uuid4().hex)

    return plan


def main(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/fire.db")
        try:
            plan = one_time_schedules(store, n)
            now = T0 + timedelta(seconds=1)
            claim = ClaimRequest("n1", now + timedelta(seconds=30), n, {"t"}, {})
            c0 = time.process_time()
            store.read_ahead(now, n)
            c1 = time.process_time()
            fired = store.fire_and_claim(now, plan, n, claim)
            c2 = time.process_time()
            ends = [(r.id, "n1", 1, AttemptOutcome("succeeded")) for r in fired.claimed]
            store.finish_attempts(ends, now)
            c3 = time.process_time()
            assert len(fired.claimed) == n
        finally:
            store.close()
    ms = 1000.0
    return {
        "read_ahead_ms": (c1 - c0) * ms,
        "fire_and_claim_ms": (c2 - c1) * ms,
        "finish_ms": (c3 - c2) * ms,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
