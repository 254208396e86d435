"""The CPU of small store calls, one at a time: what a statement's lookup costs.

    python benchmarks/store_calls.py 2000

On a fresh SQLite file with one node and 20 waiting runs, each call below runs N times
in this process; prints the CPU microseconds per call as JSON. The work of SQLite is
the same from one tree to another, so two trees (``PYTHONPATH=other/src``) compare
what tickwork adds around it: finding the statement, building its parameters.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tickwork.models import Node, Run
from tickwork.store import open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def main(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/calls.db")
        try:
            store.register_node(
                Node(id="n1", host="h", pid=1, started_at=T0, heartbeat_at=T0, tasks=("t",))
            )
            store.insert_runs(
                [
                    Run(
                        id=f"r{i}",
                        schedule_id=None,
                        task="t",
                        scheduled_for=T0 + timedelta(seconds=i),
                        trigger="manual",
                        status="pending",
                        due_at=T0,
                        created_at=T0,
                    )
                    for i in range(20)
                ]
            )
            lease = T0 + timedelta(seconds=30)
            calls: dict[str, Callable[[], object]] = {
                "get_run": lambda: store.get_run("r3"),
                "list_runs_10": lambda: store.list_runs(limit=10),
                "heartbeat_5": lambda: store.heartbeat(
                    "n1", T0, lease, [f"r{i}" for i in range(1, 6)]
                ),
                "next_wakeup": store.next_wakeup,
                "count_runs": lambda: store.count_runs(T0),
            }
            out: dict[str, float] = {}
            for name, call in calls.items():
                call()
                started = time.process_time()
                for _ in range(n):
                    call()
                out[name] = round((time.process_time() - started) / n * 1e6, 1)
            return out
        finally:
            store.close()


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
