"""The dashboard with 10,000 schedules and 1,000,000 runs: how fast its pages come.

    python benchmarks/dashboard.py                 # 10,000 schedules, 1,000,000 runs
    python benchmarks/dashboard.py --quick         # 1,000 schedules, 100,000 runs
    python benchmarks/dashboard.py --keep DIR      # keep (and reuse) the database in DIR

A SQLite database is filled (100 finished runs per schedule, one attempt each, spread
over the last 25 days: most succeeded, some failed, skipped or missed), then
``tickwork serve`` is started on it as a process and two things are measured, signed
in as the admin (who sees everything):

- over HTTP (httpx): time to first byte (the response's headers) and to the last byte
  of the HTML, 20 times each page after 3 warm-up requests;
- in Debian's chromium (Playwright): the Navigation Timing of the page, first byte and
  ``load`` (every script and stylesheet in, the charts drawn), 30 times each page
  (``--loads``), and where the time after the first byte goes: the HTML coming in,
  parsing it, the deferred scripts up to ``DOMContentLoaded``'s end, and on to ``load``.

Results are printed as Markdown (median and p95).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx

ADMIN = "bench-admin-token"
PAGES = {"schedules list": "/schedules", "overview": "/"}
TASKS = ("reports:daily", "etl:load", "mail:digest", "sync:crm", "billing:invoices")
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
EXPRESSIONS = ("*/15 * * * *", "0 * * * *", "0 2 * * *", "every 10m", "30 9 * * 1-5")


def micros(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def fill(db: Path, schedules: int, runs_per: int) -> None:
    """Create the schema (through tickwork) and insert the rows with SQL."""
    subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", f"sqlite:///{db}", "db", "upgrade"],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    now = datetime.now(UTC)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    rows = []
    for i in range(schedules):
        sid = f"s{i:05d}"
        created = micros(now - timedelta(days=30))
        nxt = micros(now + timedelta(seconds=(i * 37) % 86400))
        rows.append(
            (
                sid,
                TASKS[i % len(TASKS)],
                EXPRESSIONS[i % len(EXPRESSIONS)],
                f"Schedule {i:05d}",
                ZONES[i % len(ZONES)],
                json.dumps([f"team-{i % 7}", "bench"]),
                "paused" if i % 50 == 0 else "active",
                1 if i % 50 == 0 else 0,
                nxt,
                created,
                created,
                created,
                f"user{i % 10}",
            )
        )
    con.executemany(
        "INSERT INTO schedules (id, task, schedule, name, timezone, tags, status, paused,"
        " next_fire_at, created_at, updated_at, anchor, owner)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    # runs_per runs per schedule, evenly over 25 days up to now, inserted oldest first as
    # a running system writes them (so a time range is stored together).
    step = micros(now) - micros(now - timedelta(days=25))
    step //= max(runs_per, 1)
    end = micros(now)
    con.execute(
        """
        WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < ?)
        INSERT INTO runs (id, schedule_id, task, scheduled_for, trigger, status, attempt,
                          due_at, started_at, finished_at, error, node, created_at)
        SELECT printf('r%s-%04d', s.id, k.n), s.id, s.task,
               ? - k.n * ? - (CAST(substr(s.id, 2) AS INTEGER) % 1000) * 1000000,
               'schedule',
               CASE WHEN (k.n + CAST(substr(s.id, 2) AS INTEGER)) % 23 = 0 THEN 'failed'
                    WHEN (k.n + CAST(substr(s.id, 2) AS INTEGER)) % 31 = 0 THEN 'skipped'
                    WHEN (k.n + CAST(substr(s.id, 2) AS INTEGER)) % 97 = 0 THEN 'missed'
                    ELSE 'succeeded' END,
               1,
               ? - k.n * ?,
               ? - k.n * ?,
               ? - k.n * ? + 200000 + (k.n % 17) * 150000,
               CASE WHEN (k.n + CAST(substr(s.id, 2) AS INTEGER)) % 23 = 0
                    THEN 'RuntimeError: upstream answered 503' END,
               'bench-node',
               ? - k.n * ?
        FROM schedules s CROSS JOIN k
        ORDER BY k.n DESC, s.id
        """,
        (runs_per - 1, end, step, end, step, end, step, end, step, end, step),
    )
    con.execute(
        """
        INSERT INTO attempts (run_id, number, status, started_at, finished_at, node, error)
        SELECT id, 1, CASE WHEN status IN ('skipped', 'missed') THEN 'succeeded' ELSE status END,
               started_at, finished_at, node, error
        FROM runs WHERE status IN ('succeeded', 'failed')
        """
    )
    con.execute("ANALYZE")
    con.commit()
    con.close()


def start_serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    env.update({"TICKWORK_ADMIN_TOKEN": ADMIN, "TICKWORK_RATE_LIMIT": "0", "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tickwork.cli",
            "--db",
            f"sqlite:///{db}",
            "serve",
            "--port",
            "0",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        found = re.search(r"tickwork serve: (http://\S+?)/ ", line)
        if found:
            return proc, found.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("tickwork serve did not start")


def over_http(base: str, path: str, n: int = 20) -> dict[str, list[float]]:
    ttfb: list[float] = []
    full: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/login", data={"token": ADMIN, "next": "/"})
        assert r.status_code == 303, r.text
        for i in range(n + 3):
            t0 = time.perf_counter()
            with client.stream("GET", path) as response:
                t1 = time.perf_counter()
                body = response.read()
                t2 = time.perf_counter()
            assert response.status_code == 200 and b"</html>" in body, response.status_code
            if i >= 3:
                ttfb.append(t1 - t0)
                full.append(t2 - t0)
    return {"ttfb": ttfb, "full": full}


#: The browser's phases after the first byte (Navigation Timing), as (name, from, to).
PHASES = (
    ("HTML in", "responseStart", "responseEnd"),
    ("parse", "responseEnd", "domInteractive"),
    ("scripts", "domInteractive", "domContentLoadedEventEnd"),
    ("to load", "domContentLoadedEventEnd", "loadEventEnd"),
)


def in_browser(base: str, path: str, n: int = 30) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    ttfb: list[float] = []
    load: list[float] = []
    phases: dict[str, list[float]] = {name: [] for name, _, _ in PHASES}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(base + "/login")
        page.get_by_label("Token").fill(ADMIN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        for i in range(n + 2):
            page.goto(base + path, wait_until="load")
            timing: dict[str, Any] = page.evaluate(
                "JSON.parse(JSON.stringify(performance.getEntriesByType('navigation')[0]))"
            )
            if i >= 2:
                ttfb.append((timing["responseStart"] - timing["startTime"]) / 1000)
                load.append((timing["loadEventEnd"] - timing["startTime"]) / 1000)
                for name, start, end in PHASES:
                    phases[name].append((timing[end] - timing[start]) / 1000)
        browser.close()
    return {"ttfb": ttfb, "full": load, **phases}


def fmt(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(values) * 1000:.0f} ms (p95 {p95 * 1000:.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--loads", type=int, default=30, help="browser loads per page")
    args = parser.parse_args()
    schedules, runs_per = (1_000, 100) if args.quick else (10_000, 100)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tw-dash-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"dashboard-{schedules}.db"
    if not db.exists():
        t = time.perf_counter()
        fill(db, schedules, runs_per)
        print(f"filled {db} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    proc, base = start_serve(db)
    try:
        print(f"\n{schedules:,} schedules, {schedules * runs_per:,} runs, SQLite, admin\n")
        print(
            "| page | over HTTP: first byte | over HTTP: whole page | browser: first byte"
            " | browser: load | after the first byte, medians: "
            + ", ".join(name for name, _, _ in PHASES)
            + " |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for name, path in PAGES.items():
            http = over_http(base, path)
            nan = [float("nan")]
            browser = (
                {"ttfb": nan, "full": nan, **{p: nan for p, _, _ in PHASES}}
                if args.no_browser
                else in_browser(base, path, args.loads)
            )
            split = " / ".join(f"{statistics.median(browser[p]) * 1000:.0f}" for p, _, _ in PHASES)
            print(
                f"| {name} | {fmt(http['ttfb'])} | {fmt(http['full'])} |"
                f" {fmt(browser['ttfb'])} | {fmt(browser['full'])} | {split} ms |",
                flush=True,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
