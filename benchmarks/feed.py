"""What the event feed's triggers cost the statements the engine runs (SQLite).

    python benchmarks/feed.py            # 5 alternating rounds, medians

Inserts 10,000 runs ``running`` (as a fire does, 256 rows per statement) and then ends
them (``UPDATE … SET status``), in one transaction each, on a fresh database with the
feed's triggers and on one without them, alternating, and prints microseconds per run
for each statement kind. Each round runs in a fresh process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

N = 10_000
ROWS = 256


def measure(with_feed: bool) -> dict[str, float]:
    from tickwork.store import open_store

    path = Path(tempfile.mkdtemp(prefix="tickwork-bench-feed-")) / "feed.db"
    open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    if not with_feed:
        conn.execute("DROP TRIGGER events_run_insert")
        conn.execute("DROP TRIGGER events_run_update")
    conn.execute(
        "INSERT INTO schedules (id, task, schedule, owner) VALUES ('s', 't', 'manual', 'u')"
    )
    rows = [(f"r{i:06d}", "s", "t", i, "running", 1, i) for i in range(N)]
    insert = (
        "INSERT INTO runs (id, schedule_id, task, scheduled_for, status, attempt, due_at) VALUES "
    )
    best_insert = best_update = float("inf")
    for _ in range(3):
        conn.execute("DELETE FROM runs")
        conn.execute("DELETE FROM events")
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for k in range(0, N, ROWS):
            chunk = rows[k : k + ROWS]
            conn.execute(
                insert + ",".join(["(?,?,?,?,?,?,?)"] * len(chunk)), [v for r in chunk for v in r]
            )
        conn.execute("COMMIT")
        t1 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for k in range(0, N, ROWS):
            ids = [r[0] for r in rows[k : k + ROWS]]
            conn.execute(
                "UPDATE runs SET status = 'succeeded', finished_at = 5 WHERE id IN ("
                + ",".join("?" * len(ids))
                + ")",
                ids,
            )
        conn.execute("COMMIT")
        t2 = time.perf_counter()
        best_insert, best_update = min(best_insert, t1 - t0), min(best_update, t2 - t1)
    conn.close()
    return {"insert_us": best_insert * 1e6 / N, "update_us": best_update * 1e6 / N}


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        print(json.dumps(measure(sys.argv[2] == "feed")))
        return
    results: dict[str, list[dict[str, float]]] = {"without": [], "feed": []}
    for _ in range(5):
        for side in ("without", "feed"):
            out = subprocess.run(
                [sys.executable, __file__, "_child", side], capture_output=True, text=True,
                check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            ).stdout  # fmt: skip
            results[side].append(json.loads(out))
    print(
        f"| statement (10,000 runs, {ROWS} per statement) | without the feed µs/run | with µs/run | added µs/run |"
    )
    print("|---|---:|---:|---:|")
    for key, label in (
        ("insert_us", "insert as running (a fire)"),
        ("update_us", "status update (ends)"),
    ):
        a = statistics.median(r[key] for r in results["without"])
        b = statistics.median(r[key] for r in results["feed"])
        print(f"| {label} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")


if __name__ == "__main__":
    main()
