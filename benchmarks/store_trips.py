"""The store's work for the worker scenario's rounds, without the engine.

    python benchmarks/store_trips.py 20        # 20 trips of 50 ends and 50 claims
    valgrind --tool=callgrind python benchmarks/store_trips.py 20   # and 0: the difference

A fresh SQLite file with 1,000 one-time schedules due at once, fired with 100 runs
claimed (as a worker with ``max_concurrent`` 100 does), then N trips each writing 50
attempt ends and claiming 50 runs in one transaction (``Store.finish_and_claim``, as
the engine's finisher calls it). Prints the CPU milliseconds of the trips as JSON; with
N = 0 only the set-up runs, so the instruction counts of two callgrind runs (N and 0)
give the trips' own, which the machine's load does not change.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.store_fire import T0, one_time_schedules
from tickwork.models import AttemptOutcome
from tickwork.store import open_store
from tickwork.store.base import ClaimRequest

SCHEDULES = 1000
SLOTS = 100
HALF = SLOTS // 2


def main(trips: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/trips.db")
        try:
            plan = one_time_schedules(store, SCHEDULES)
            now = T0 + timedelta(seconds=1)
            lease = now + timedelta(seconds=30)
            store.read_ahead(now, SCHEDULES)
            fired = store.fire_and_claim(
                now, plan, SCHEDULES, ClaimRequest("n1", lease, SLOTS, {"t"}, {})
            )
            running = [r.id for r in fired.claimed]
            c0 = time.process_time()
            for _ in range(trips):
                ending, running = running[:HALF], running[HALF:]
                ends = [
                    (rid, "n1", 1, AttemptOutcome("succeeded", finished_at=now)) for rid in ending
                ]
                _written, claimed = store.finish_and_claim(
                    ends, now, "n1", lease, len(ends), ("t",), {}, brief=True
                )
                running.extend(r.id for r in claimed)
            c1 = time.process_time()
        finally:
            store.close()
    return {
        "trips": trips,
        "cpu_ms": (c1 - c0) * 1000.0,
        "per_run_us": (c1 - c0) * 1e6 / max(1, trips * HALF),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
