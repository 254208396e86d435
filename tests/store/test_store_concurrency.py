"""Several processes and threads on one database: no double fire, no double claim, limits hold.

Workers are real processes (``store_worker.py``) started together through a stdin
barrier; each runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter

from tickwork.models import AttemptOutcome, Run
from tickwork.store import Store, open_store
from tickwork.store.sql import load_migrations

from .conftest import at, finish_one, make_run, make_schedule, reap, spawn


def _run_together(procs: list[subprocess.Popen[str]], timeout: float = 60) -> list[object]:
    """Wait until every worker is ready, release them at once, collect their JSON lines."""
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "ready", (line, p.stderr.read() if p.stderr else "")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            reap(p)


def test_processes_opening_a_fresh_database_at_once_all_succeed(db_url: str) -> None:
    results = _run_together([spawn("open", db_url) for _ in range(4)])
    latest = load_migrations("sqlite")[-1][0]
    assert results == [{"version": latest}] * 4


def test_concurrent_fire_due_never_fires_a_time_twice(db_url: str) -> None:
    schedules, seconds = 12, 25
    store = open_store(db_url)
    try:
        for i in range(schedules):
            store.add_schedule(make_schedule(f"s{i:02d}"))
        results = _run_together([spawn("fire", db_url, str(seconds)) for _ in range(4)])
        # Every planner call that committed, across processes: each fire exactly once.
        fires = [tuple(f) for result in results for f in result]  # type: ignore[attr-defined]
        assert len(fires) == len(set(fires)) == schedules * (seconds + 1)
        runs = store.list_runs(limit=10_000)
        keys = Counter((r.schedule_id, r.scheduled_for) for r in runs)
        assert len(runs) == schedules * (seconds + 1) and max(keys.values()) == 1
        for s in store.list_schedules():
            assert s.execution_count == seconds + 1
            assert s.next_fire_at == at(seconds + 1)
    finally:
        store.close()


def _claim_fixture(store: Store) -> dict[str, list[Run]]:
    """Waiting runs under every kind of limit. At most 41 can run at once."""
    made: dict[str, list[Run]] = {}
    for sid, n, fields in (
        ("allow2", 10, {"overlap": "allow", "max_instances": 2}),  # 2
        ("skip", 5, {"overlap": "skip"}),  # 1
        ("queue", 5, {"overlap": "queue"}),  # 1, the oldest
        ("replace", 20, {"overlap": "replace", "task": "u"}),  # task u limited to 7
    ):
        s = store.add_schedule(make_schedule(sid, **fields))  # type: ignore[arg-type]
        made[sid] = [make_run(s, at(i), trigger="schedule") for i in range(n)]
        store.insert_runs(made[sid])
    made["manual"] = [make_run(None, at(i % 7)) for i in range(30)]  # 30, unlimited
    store.insert_runs(made["manual"])
    return made


def _check_claims(store: Store, made: dict[str, list[Run]], claimed: list[str]) -> None:
    assert len(claimed) == len(set(claimed)), "a run was claimed twice"
    running = store.list_runs(status="running", limit=1000)
    assert sorted(r.id for r in running) == sorted(claimed)
    assert all(r.attempt == 1 and len(r.attempts) == 1 for r in running)
    per_schedule = Counter(r.schedule_id for r in running)
    assert per_schedule["allow2"] == 2
    assert per_schedule["skip"] == 1
    assert per_schedule["queue"] == 1
    assert per_schedule["replace"] == 7
    assert per_schedule[None] == 30
    assert made["queue"][0].id in claimed  # a queue starts with its oldest run


def test_concurrent_claiming_processes_respect_every_limit(db_url: str) -> None:
    store = open_store(db_url)
    try:
        made = _claim_fixture(store)
        limits = json.dumps({"u": 7})
        results = _run_together(
            [spawn("claim", db_url, f"n{i}", str(2 + i), limits) for i in range(4)]
        )
        claimed = [rid for result in results for rid in result]  # type: ignore[attr-defined]
        _check_claims(store, made, claimed)
    finally:
        store.close()


def test_concurrent_claiming_threads_share_one_store(db_url: str) -> None:
    store = open_store(db_url)
    try:
        made = _claim_fixture(store)
        claimed: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def worker(i: int) -> None:
            try:
                start.wait()
                idle = 0
                while idle < 10:
                    got = store.claim_runs(f"n{i}", at(100), at(200), 3, ["t", "u"], {"u": 7})
                    claimed.extend(r.id for r in got)
                    idle = 0 if got else idle + 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        _check_claims(store, made, claimed)
    finally:
        store.close()


def test_limits_hold_at_every_moment_while_nodes_claim_and_finish(db_url: str) -> None:
    """Four processes claim and finish as fast as they can; meanwhile every committed
    state the test looks at must keep every schedule and task within its limit."""
    store = open_store(db_url)
    try:
        made: dict[str, list[Run]] = {}
        for sid, n, fields in (
            ("allow2", 60, {"overlap": "allow", "max_instances": 2}),
            ("skip", 30, {"overlap": "skip"}),
            ("queue", 30, {"overlap": "queue"}),
            ("replace", 60, {"overlap": "replace", "task": "u"}),
        ):
            s = store.add_schedule(make_schedule(sid, **fields))  # type: ignore[arg-type]
            made[sid] = [make_run(s, at(i), trigger="schedule") for i in range(n)]
            store.insert_runs(made[sid])
        limits = {"allow2": 2, "skip": 1, "queue": 1}
        procs = [spawn("churn", db_url, f"n{i}", json.dumps({"u": 3})) for i in range(4)]
        peaks: Counter[str] = Counter()
        finished = threading.Event()

        def watch() -> None:
            while not finished.is_set():
                running = store.list_runs(status="running", limit=1000)
                per_schedule = Counter(r.schedule_id for r in running)
                for sid, n in per_schedule.items():
                    assert sid is not None
                    peaks[sid] = max(peaks[sid], n)
                peaks["task u"] = max(peaks["task u"], sum(r.task == "u" for r in running))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            done = _run_together(procs)
        finally:
            finished.set()
            watcher.join(10)
        assert sum(done) == 180  # type: ignore[arg-type]
        for sid, limit in limits.items():
            assert peaks[sid] <= limit, (sid, peaks)
        assert peaks["task u"] <= 3, peaks
        assert sum(peaks.values()) > 0, "the watcher never saw a run running"
        runs = store.list_runs(limit=1000)
        assert len(runs) == 180
        for r in runs:  # each ran exactly once
            assert (r.status, r.attempt, len(r.attempts), r.result) == ("succeeded", 1, 1, r.id)
    finally:
        store.close()


def test_concurrent_queue_consumers_never_share_a_message(db_url: str) -> None:
    store = open_store(db_url)
    try:
        store.add_schedule(make_schedule("a", overlap="replace", result_queue="q"))
        runs = [make_run(store.get_schedule("a"), at(i), trigger="schedule") for i in range(60)]
        store.insert_runs(runs)
        for run in store.claim_runs("n1", at(100), at(200), 100, ["t"], {}):
            finish_one(store, run.id, "n1", 1, AttemptOutcome("succeeded", result=1), at(101))
        got: list[int] = []

        def consume() -> None:
            while batch := store.read_queue("q", limit=3):
                got.extend(m.id for m in batch)

        threads = [threading.Thread(target=consume) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(got) == len(set(got)) == 60
    finally:
        store.close()
