"""A separate process for the store tests: ``python store_worker.py MODE URL [ARGS...]``.

It prints ``ready`` once set up, waits for a line on stdin (``go``) so that several
workers start together, does its part, and prints one JSON line with what it did.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tickwork.models import AttemptOutcome, FirePlan, Node, PlannedRun, Run, Schedule
from tickwork.store import Store, open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finish_one(
    store: Store, run_id: str, node_id: str, attempt: int, outcome: AttemptOutcome, now: datetime
) -> Run | None:
    return store.finish_attempts([(run_id, node_id, attempt, outcome)], now)[0]


def ready_then_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def main(argv: list[str]) -> None:
    mode, url, *args = argv
    if mode == "open":
        ready_then_go()
        store = open_store(url)
        print(json.dumps({"version": store.schema_version()}), flush=True)
        store.close()
        return

    store = open_store(url)
    if mode == "fire":
        # Fire one time per schedule per call, up to ``end`` seconds after T0.
        end = at(float(args[0]))
        planned: list[tuple[str, str]] = []

        def plan(schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
            assert schedule.next_fire_at is not None
            t = schedule.next_fire_at
            planned.append((schedule.id, t.isoformat()))
            return FirePlan(
                runs=(PlannedRun(id=uuid.uuid4().hex, scheduled_for=t, due_at=t),),
                next_fire_at=t + timedelta(seconds=1),
                last_fire_at=t,
                execution_count=schedule.execution_count + 1,
                status="active",
            )

        ready_then_go()
        committed: list[tuple[str, str]] = []
        while True:
            planned.clear()
            store.fire_due(end, plan, 3)
            committed.extend(planned)
            if not planned and all(
                s.next_fire_at is None or s.next_fire_at > end for s in store.list_schedules()
            ):
                break
        print(json.dumps(committed), flush=True)
    elif mode == "claim":
        node, limit = args[0], int(args[1])
        task_limits = json.loads(args[2])
        ready_then_go()
        claimed: list[str] = []
        idle = 0
        while idle < 20:
            got = store.claim_runs(
                node, at(100), at(200), 1 + len(claimed) % limit, ["t", "u"], task_limits
            )
            claimed.extend(r.id for r in got)
            idle = 0 if got else idle + 1
        print(json.dumps(claimed), flush=True)
    elif mode == "churn":
        # Claim a few, finish them, again, until nothing is left to claim.
        node, task_limits = args[0], json.loads(args[1])
        ready_then_go()
        done = 0
        idle = 0
        while idle < 30:
            got = store.claim_runs(node, at(100), at(200), 1 + done % 3, ["t", "u"], task_limits)
            for run in got:
                finish_one(
                    store,
                    run.id,
                    node,
                    run.attempt,
                    AttemptOutcome("succeeded", result=run.id),
                    at(101),
                )
            done += len(got)
            idle = 0 if got else idle + 1
        print(json.dumps(done), flush=True)
    elif mode in ("node", "node-forks"):
        # A node that registers, then waits to be killed. Its pid as given (second
        # argument) stands for a pid another process has taken since. ``node-forks``
        # then forks a child that outlives it, and says the child's pid.
        node_id = args[0]
        now = at(0)
        store.register_node(
            Node(
                id=node_id,
                host=socket.gethostname(),
                pid=int(args[1]) if len(args) > 1 else os.getpid(),
                started_at=now,
                heartbeat_at=now,
                tasks=("t",),
            )
        )
        if mode == "node-forks":
            started, tell = os.pipe()
            child = os.fork()
            if child == 0:
                # Past os.fork in the child: its at-fork handlers have run.
                os.write(tell, b"1")
                time.sleep(3600)  # until killed
                os._exit(0)
            os.read(started, 1)  # "ready" only once the child is on its own
            print(child, flush=True)
        print("ready", flush=True)
        time.sleep(3600)  # until killed
    elif mode == "add":
        ready_then_go()
        store.add_schedule(Schedule(id=args[0], task="t", schedule="1s", next_fire_at=T0))
        print(json.dumps("added"), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")
    store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
