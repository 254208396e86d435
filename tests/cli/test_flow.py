"""The tour a user takes, with a real worker: create, show, list, update, pause/resume,
run --wait, history, stats, status, delete."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.conftest import Cli, Worker, wait_for

PARIS = ZoneInfo("Europe/Paris")

SCHEDULE_FIELDS = {
    "id",
    "name",
    "description",
    "task",
    "schedule",
    "timezone",
    "data",
    "start_at",
    "end_at",
    "jitter",
    "paused",
    "overlap",
    "catchup",
    "misfire_grace",
    "max_instances",
    "max_executions",
    "retry",
    "timeout",
    "priority",
    "result_queue",
    "error_queue",
    "tags",
    "metadata",
    "owner",
    "status",
    "next_fire_at",
    "last_fire_at",
    "execution_count",
    "created_at",
    "updated_at",
}
RUN_FIELDS = {
    "id",
    "schedule_id",
    "task",
    "scheduled_for",
    "trigger",
    "data",
    "status",
    "attempt",
    "attempts",
    "started_at",
    "finished_at",
    "duration",
    "result",
    "error",
    "traceback",
    "node",
    "trace_id",
    "logs",
}


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


def test_create_show_list_update_pause_run_history_delete(wcli: Cli) -> None:
    created = wcli.json(
        "create",
        "--task", "cli:echo",
        "--schedule", "0 2 * * *",
        "--id", "nightly",
        "--name", "Nightly echo",
        "--data", '{"region": "eu"}',
        "--tz", "Europe/Paris",
        "--overlap", "queue",
        "--catchup", "none",
        "--misfire-grace", "60",
        "--retries", "4",
        "--retry-delay", "1.5",
        "--timeout", "20",
        "--priority", "3",
        "--tag", "reports",
        "--tag", "eu",
        "--result-queue", "results",
        "--jitter", "2",
    )  # fmt: skip
    assert set(created) >= SCHEDULE_FIELDS
    assert created["id"] == "nightly"
    assert created["task"] == "cli:echo"
    assert created["timezone"] == "Europe/Paris"
    assert created["data"] == {"region": "eu"}
    assert created["overlap"] == "queue"
    assert created["catchup"] == "none"
    assert created["misfire_grace"] == 60
    assert created["retry"]["max_attempts"] == 5
    assert created["retry"]["delay"] == 1.5
    assert created["timeout"] == 20
    assert created["priority"] == 3
    assert created["tags"] == ["reports", "eu"]
    assert created["result_queue"] == "results"
    assert created["status"] == "active"
    nxt = _aware(created["next_fire_at"])
    assert nxt.astimezone(PARIS).hour == 2
    _aware(created["created_at"])

    shown = wcli("show", "--id", "nightly").stdout
    for text in ("nightly", "Nightly echo", "cli:echo", "0 2 * * *", "Europe/Paris", "active"):
        assert text in shown, shown
    assert wcli.json("show", "--id", "nightly")["id"] == "nightly"

    table = wcli("list").stdout
    assert "nightly" in table and "cli:echo" in table
    listed = wcli.json("list")
    assert isinstance(listed, list)
    mine = [s for s in listed if s["id"] == "nightly"]
    assert len(mine) == 1 and set(mine[0]) >= SCHEDULE_FIELDS
    assert [s["id"] for s in wcli.json("list", "--task", "cli:echo", "--status", "active")] == [
        s["id"] for s in listed if s["task"] == "cli:echo" and s["status"] == "active"
    ]
    assert wcli.json("list", "--format", "json") == listed

    # Only the options given change.
    updated = wcli.json(
        "update", "--id", "nightly", "--schedule", "30 3 * * 1-5", "--priority", "7"
    )
    assert updated["schedule"] == "30 3 * * 1-5"
    assert updated["priority"] == 7
    assert updated["data"] == {"region": "eu"}
    assert updated["retry"]["max_attempts"] == 5
    assert updated["tags"] == ["reports", "eu"]
    assert _aware(updated["next_fire_at"]).astimezone(PARIS).strftime("%H:%M") == "03:30"

    paused = wcli.json("pause", "--id", "nightly")
    assert [s["id"] for s in paused] == ["nightly"]
    assert wcli.json("show", "--id", "nightly")["status"] == "paused"
    assert "resumed 1 schedule(s): nightly" in wcli("resume", "--id", "nightly").stdout
    assert wcli.json("show", "--id", "nightly")["status"] == "active"

    run = wcli.json("run", "--id", "nightly", "--data", '{"extra": 1}', "--wait", "--timeout", "20")
    assert set(run) >= RUN_FIELDS
    assert run["status"] == "succeeded", run
    assert run["trigger"] == "manual"
    assert run["result"] == {"data": {"region": "eu", "extra": 1}, "attempt": 1}
    assert run["schedule_id"] == "nightly"
    assert run["attempt"] == 1 and len(run["attempts"]) == 1
    _aware(run["started_at"])
    _aware(run["finished_at"])
    assert run["node"]

    history = wcli.json("history", "--schedule", "nightly")
    assert [r["id"] for r in history] == [run["id"]]
    assert set(history[0]) >= RUN_FIELDS
    assert run["id"] in wcli("history", "--schedule", "nightly").stdout
    assert wcli.json("history", "--schedule", "nightly", "--status", "failed") == []
    detail = wcli("history", "--run", run["id"]).stdout
    assert "succeeded" in detail and "echo" in detail  # the captured log line

    stats = wcli.json("stats")
    echo = next(t for t in stats["tasks"] if t["task"] == "cli:echo")
    assert echo["runs"] >= 1 and echo["succeeded"] >= 1
    assert "cli:echo" in wcli("stats").stdout

    deleted = wcli.json("delete", "--id", "nightly", "--confirm")
    assert deleted == {"id": "nightly", "deleted": True}
    assert wcli.error("show", "--id", "nightly") == "error: schedule 'nightly' not found"
    # History outlives the schedule.
    assert [r["id"] for r in wcli.json("history", "--schedule", "nightly")] == [run["id"]]


def test_run_without_wait_then_history(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "manual-echo")
    out = wcli("run", "--id", "manual-echo").stdout
    assert "pending" in out
    run = wcli.json("history", "--schedule", "manual-echo")[0]
    assert run["trigger"] == "manual"


def test_run_wait_of_a_failing_task_exits_1_with_the_error(wcli: Cli) -> None:
    wcli(
        "create", "--task", "cli:fail", "--schedule", "manual", "--id", "failing", "--retries", "0"
    )
    proc = wcli("--json", "run", "--id", "failing", "--wait", "--timeout", "20", expect=1)
    run = json.loads(proc.stdout)
    assert run["status"] == "failed"
    assert "ValueError: boom on attempt 1" in run["error"]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: run ")
    assert "failed" in wcli("history", "--schedule", "failing").stdout


def test_once_fires_one_time_and_finishes(wcli: Cli) -> None:
    created = wcli.json(
        "create", "--task", "cli:echo", "--schedule", "every 1s", "--once", "--id", "once-only"
    )
    assert created["max_executions"] == 1
    wait_for(lambda: wcli.json("show", "--id", "once-only")["status"] == "finished", 15, "the fire")
    runs = wcli.json("history", "--schedule", "once-only")
    assert len(runs) == 1


def test_pause_and_resume_all(wcli: Cli) -> None:
    for sid in ("all-a", "all-b"):
        wcli("create", "--task", "cli:echo", "--schedule", "1h", "--id", sid)
    paused = {s["id"] for s in wcli.json("pause")}
    assert {"all-a", "all-b"} <= paused
    statuses = {s["id"]: s["status"] for s in wcli.json("list")}
    assert statuses["all-a"] == statuses["all-b"] == "paused"
    resumed = {s["id"] for s in wcli.json("resume")}
    assert {"all-a", "all-b"} <= resumed
    assert wcli.json("show", "--id", "all-a")["status"] == "active"


def test_status_shows_the_worker_as_leader(wcli: Cli, worker: Worker) -> None:
    status = wcli.json("status")
    assert len(status["nodes"]) >= 1
    node = status["nodes"][0]
    assert "cli:echo" in node["tasks"]
    assert any(n["is_leader"] for n in status["nodes"])
    assert isinstance(status["running"], int) and isinstance(status["backlog"], int)
    text = wcli("status").stdout
    assert node["id"] in text and "backlog" in text


def test_update_paused_flag_and_create_paused(wcli: Cli) -> None:
    created = wcli.json(
        "create", "--task", "cli:echo", "--schedule", "5m", "--id", "starts-paused", "--paused"
    )
    assert created["status"] == "paused" and created["paused"] is True
    active = wcli.json("update", "--id", "starts-paused", "--active")
    assert active["status"] == "active"


def test_an_update_that_changes_nothing_says_so(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "same", "--priority", "3")
    said = wcli("update", "--id", "same", "--priority", "3").stdout
    assert said.startswith("schedule same unchanged: every option given is as it was"), said
    assert wcli.json("show", "--id", "same")["version"] == 1
    assert wcli("update", "--id", "same", "--priority", "4").stdout.startswith(
        "updated schedule same"
    )


def test_update_replaces_or_clears_tags(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "tagged", "--tag", "a")
    assert wcli.json("update", "--id", "tagged", "--tag", "b", "--tag", "c")["tags"] == ["b", "c"]
    assert wcli.json("update", "--id", "tagged", "--clear-tags")["tags"] == []
    error = wcli.error("update", "--id", "tagged", "--clear-tags", "--tag", "d", code=2)
    assert "not both" in error
    assert wcli.json("show", "--id", "tagged")["tags"] == []


def test_update_clears_the_limit_of_fires(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "limited", "--once")
    assert wcli.json("show", "--id", "limited")["max_executions"] == 1
    assert (
        wcli.json("update", "--id", "limited", "--clear-max-executions")["max_executions"] is None
    )
    for given in (["--once"], ["--max-executions", "3"]):
        error = wcli.error("update", "--id", "limited", "--clear-max-executions", *given, code=2)
        assert given[0] in error and "not both" in error
    assert wcli.json("show", "--id", "limited")["max_executions"] is None


def test_next_lists_stored_fires_merged_in_time_order(cli: Cli, tmp_path: Path) -> None:
    # A database of its own, so only these schedules exist; a past node's tasks stay known.
    worker = Worker(cli.db_url, tmp_path / "worker.log")
    try:
        worker.wait_ready()
    finally:
        assert worker.terminate() == 0, worker.output()
    cli("create", "--task", "cli:echo", "--schedule", "0 9 * * *", "--id", "nine")
    cli("create", "--task", "cli:echo", "--schedule", "30 9 * * *", "--id", "half-past")
    cli("create", "--task", "cli:echo", "--schedule", "* * * * *", "--id", "off", "--paused")
    cli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "by-hand")

    fires = cli.json("next", "--count", "4")
    assert [f["schedule_id"] for f in fires] in (
        ["nine", "half-past", "nine", "half-past"],
        ["half-past", "nine", "half-past", "nine"],
    )
    times = [datetime.fromisoformat(f["fire_at"]) for f in fires]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert [t.strftime("%H:%M") for t in times] in (
        ["09:00", "09:30"] * 2,
        ["09:30", "09:00"] * 2,
    )

    one = cli.json("next", "--schedule", "nine", "--count", "3")
    assert [f["schedule_id"] for f in one] == ["nine"] * 3
    assert [datetime.fromisoformat(f["fire_at"]).hour for f in one] == [9, 9, 9]
    table = cli("next", "--count", "2").stdout
    assert "nine" in table and "half-past" in table
    assert "no upcoming fire" in cli("next", "--schedule", "off").stdout
    assert "--count must be between" in cli.error("next", "--count", "0", code=2)
