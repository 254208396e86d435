"""The commands that do what the Python API does (cancel, backfill, queue read, tasks,
--version), global options after the command, missing databases, and words that mean
one thing (statuses, "paused", --after, time zone names)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import typer

from tests.cli.conftest import ROOT, Cli, Worker, cli_env, wait_for
from tickwork import ScheduleError, Scheduler


def publish_tasks(url: str) -> None:
    """Make the CLI test tasks known in ``url``'s database, as a past node would."""
    import tests.cli.cli_tasks  # noqa: F401  # registers the tasks
    from tickwork.engine.registry import REGISTRY

    async def start_and_stop() -> None:
        async with Scheduler(url, registry=REGISTRY, shutdown_grace=0):
            pass

    asyncio.run(start_and_stop())


@pytest.fixture
def kcli(cli: Cli) -> Cli:
    """The CLI on its own database, where the CLI test tasks are known."""
    publish_tasks(cli.db_url)
    return cli


def test_version(cli: Cli) -> None:
    from importlib.metadata import version

    assert cli("--version").stdout.strip() == f"tickwork {version('tickwork')}"


def test_global_options_after_the_command(kcli: Cli, tmp_path: Path) -> None:
    cli = kcli
    other = f"sqlite:///{tmp_path / 'other.db'}"
    publish_tasks(other)
    # --db after the command beats the one before it (given by the fixture).
    cli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "x", "--db", other,
        "--json")  # fmt: skip
    assert [s["id"] for s in cli.json("list", "--db", other)] == ["x"]
    assert cli.json("list") == []
    assert cli("list", "--json", f"--db={other}").stdout.startswith("[")
    # A command's own option value that looks like a global option is not moved.
    created = cli.json("create", "--task", "cli:echo", "--schedule", "manual", "--id", "y",
                       "--name", "--json", "--db", other)  # fmt: skip
    assert created["name"] == "--json"


def test_reading_a_missing_sqlite_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    missing = Cli(f"sqlite:///{path}")
    for command in (["list"], ["status"], ["history"], ["show", "--id", "x"], ["tasks"],
                    ["queue", "read", "q"], ["cancel", "--run", "r"], ["stats"], ["next"],
                    ["pause"], ["run", "--id", "x"], ["cleanup", "--older-than-days", "1"],
                    ["backfill", "--id", "x", "--start", "2026-01-01", "--end", "2026-01-02"],
                    ["token", "list"]):  # fmt: skip
        assert f"database {path} does not exist" in missing.error(*command)
    assert not path.exists()
    # Creating commands create it.
    missing("db", "upgrade")
    assert path.exists()


def test_create_makes_the_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    fresh = Cli(f"sqlite:///{path}")
    message = fresh.error("create", "--task", "cli:nope", "--schedule", "5m")
    assert "unknown task 'cli:nope'" in message  # the database exists now: it was opened
    assert path.exists()


def test_status_names_the_database_with_its_password_masked(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    user = parts.username or "postgres"
    with_password = urlunsplit(
        parts._replace(netloc=f"{user}:s3cret@{parts.netloc.rpartition('@')[2]}")
    )
    cli = Cli(with_password)
    cli("db", "upgrade")
    text = cli("status").stdout
    assert f"database: {with_password.replace('s3cret', '***')}" in text
    assert "s3cret" not in text
    assert cli.json("status")["db"] == with_password.replace("s3cret", "***")


def test_status_masks_every_secret_libpq_takes_from_the_query(pg_url: str) -> None:
    """libpq reads the client key's passphrase (``sslpassword``) and a %-encoded
    ``password`` from the query too: neither may be printed."""
    url = f"{pg_url}?sslpassword=k3ypass&%70assword=hunter2"
    text = Cli(url)("status").stdout
    assert "k3ypass" not in text and "hunter2" not in text
    assert "sslpassword=***&%70assword=***" in text


def test_status_names_a_sqlite_database(cli: Cli) -> None:
    assert f"database: {cli.db_url}" in cli("status").stdout


def test_cancel_a_waiting_run(kcli: Cli) -> None:
    cli = kcli
    # No node runs here: the run waits, and cancelling it ends it at once.
    cli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "m")
    run = cli.json("run", "--id", "m")
    assert run["status"] == "pending"
    assert cli("cancel", "--run", run["id"]).stdout.strip() == f"run {run['id']} cancelled"
    assert cli.json("history", "--run", run["id"])["status"] == "cancelled"
    again = cli.error("cancel", "--run", run["id"])
    assert again == f"error: run '{run['id']}' is already over (cancelled)"
    assert "run 'nope' not found" in cli.error("cancel", "--run", "nope").replace('"', "'")


def test_cancel_a_running_run_stops_it_on_its_node(wcli: Cli) -> None:
    wcli("create", "--task", "cli:sleep", "--schedule", "manual", "--id", "long-sleep",
         "--retries", "0", "--data", '{"seconds": 60}')  # fmt: skip
    run = wcli.json("run", "--id", "long-sleep")
    wait_for(
        lambda: wcli.json("history", "--run", run["id"])["status"] == "running", 20, "the start"
    )
    said = wcli("cancel", "--run", run["id"]).stdout.strip()
    assert said == f"run {run['id']} is running: its node was asked to stop it"
    wait_for(
        lambda: wcli.json("history", "--run", run["id"])["status"] == "cancelled",
        20,
        "the node to stop it",
    )
    (attempt,) = wcli.json("history", "--run", run["id"])["attempts"]
    assert attempt["status"] == "cancelled"


def test_global_options_for_a_server_after_the_command() -> None:
    from tickwork.cli.main import _register_commands, app, hoist_global_options

    _register_commands()
    root = typer.main.get_command(app)
    url = ["--url", "http://h:8000", "--token", "t"]
    assert hoist_global_options(["list", *url], root) == [*url, "list"]
    assert hoist_global_options(["queue", "read", "q", "--token=t", "--url=u", "--consume"],
                                root) == ["--token=t", "--url=u", "queue", "read", "q",
                                          "--consume"]  # fmt: skip
    # After "--" nothing moves.
    assert hoist_global_options(["list", "--", "--url", "u"], root) == ["list", "--", "--url", "u"]


def test_backfill_creates_each_missing_fire_once(kcli: Cli) -> None:
    cli = kcli
    cli("create", "--task", "cli:echo", "--schedule", "0 * * * *", "--id", "hourly",
        "--tz", "Europe/Paris")  # fmt: skip
    runs = cli.json("backfill", "--id", "hourly", "--start", "2026-01-05T09:00",
                    "--end", "2026-01-05T12:00")  # fmt: skip
    # Naive times are in the schedule's zone: 09:00..12:00 Paris = 08:00..11:00 UTC.
    assert sorted(r["scheduled_for"] for r in runs) == [
        f"2026-01-05T{h:02d}:00:00+00:00" for h in range(8, 12)
    ]
    assert {r["trigger"] for r in runs} == {"backfill"}
    text = cli("backfill", "--id", "hourly", "--start", "2026-01-05T09:00",
               "--end", "2026-01-05T13:00").stdout  # fmt: skip
    assert "created 1 backfill run(s)" in text
    again = cli("backfill", "--id", "hourly", "--start", "2026-01-05T09:00",
                "--end", "2026-01-05T13:00").stdout  # fmt: skip
    assert "no run to create" in again
    assert "end is before start" in cli.error(
        "backfill", "--id", "hourly", "--start", "2026-01-06", "--end", "2026-01-05"
    )
    # A range the schedule never fires in is a mistake, not "every fire has a run".
    assert cli.error(
        "backfill", "--id", "hourly", "--start", "2026-01-05T09:10", "--end", "2026-01-05T09:50"
    ).strip() == (
        "error: no fire time of schedule 'hourly' falls between 2026-01-05T09:10:00+01:00 "
        "and 2026-01-05T09:50:00+01:00; its first after the start is 2026-01-05T10:00:00+01:00"
    )


def test_tasks_without_and_with_a_node(cli: Cli, tmp_path: Path) -> None:
    assert "no task is known" in cli("tasks").stdout
    assert cli.json("tasks") == []
    worker = Worker(cli.db_url, tmp_path / "w.log")
    try:
        worker.wait_ready()
        listed = {t["name"]: t for t in cli.json("tasks")}
        assert listed["cli:sleep"]["arguments"] == ["seconds", "laps", "splits"]
        assert listed["cli:sleep"]["required"] == []
        assert listed["cli:short_timeout"]["timeout"] == 1
        assert listed["cli:echo"]["accepts_any"] is True
        assert len(listed["cli:echo"]["nodes"]) == 1
        assert listed["cli:sleep"]["types"]["seconds"] == {"types": ["number"], "values": []}
        assert listed["cli:sleep"]["types"]["laps"]["additional_properties"]["items"] == {
            "types": ["number"],
            "values": [],
        }
        table = cli("tasks").stdout
        # Each default as JSON, as --data takes it.
        assert listed["cli:sleep"]["defaults"] == {"seconds": 2.0, "laps": None, "splits": []}
        assert "cli:sleep" in table and "seconds: float = 2.0" in table and "**data" in table
        assert "laps: dict[str, list[float]] | None = null" in table
        # A tuple of any length is checked as a list and spelled as it was written.
        assert listed["cli:sleep"]["types"]["splits"] == {
            "types": ["array"],
            "values": [],
            "items": {"types": ["number"], "values": []},
            "tuple": True,
        }
        assert "splits: tuple[float, ...] = []" in table
        # This process has not imported the tasks: it checks the types the node published.
        assert cli.error(
            "create", "--task", "cli:sleep", "--schedule", "manual", "--data", '{"seconds": "x"}'
        ).startswith("error: data.seconds must be a number, not the string 'x'")
        laps = '{"laps": {"warm": [1, 2], "cool": [0.5, "x"]}}'
        assert cli.error(
            "create", "--task", "cli:sleep", "--schedule", "manual", "--data", laps
        ).startswith("error: data.laps.cool[1] must be a number, not the string 'x'")
    finally:
        assert worker.terminate() == 0


def test_queue_read_peeks_or_consumes(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "queued",
         "--result-queue", "results-q", "--data", '{"n": 1}')  # fmt: skip
    run = wcli.json("run", "--id", "queued", "--wait")
    peeked = wcli.json("queue", "read", "results-q")
    assert [(m["run_id"], m["kind"]) for m in peeked] == [(run["id"], "result")]
    assert peeked[0]["payload"]["result"] == {"data": {"n": 1}, "attempt": 1}
    assert "results-q" in wcli("queue", "read", "results-q").stdout  # still there
    assert len(wcli.json("queue", "read", "results-q", "--consume")) == 1
    assert wcli.json("queue", "read", "results-q") == []
    assert "queue results-q is empty" in wcli("queue", "read", "results-q").stdout


def test_show_json_carries_next_fires_and_recent_runs(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "0 9 * * *", "--id", "shown")
    run = wcli.json("run", "--id", "shown", "--wait")
    shown = wcli.json("show", "--id", "shown")
    assert len(shown["upcoming"]) == 5 and shown["upcoming"][0] == shown["next_fire_at"]
    assert [r["id"] for r in shown["recent_runs"]] == [run["id"]]
    assert shown["recent_runs"][0]["status"] == "succeeded"


def test_a_paused_schedule_shows_paused_not_a_next_fire(kcli: Cli) -> None:
    cli = kcli
    cli("create", "--task", "cli:echo", "--schedule", "0 9 * * *", "--id", "p", "--paused")
    row = next(line for line in cli("list").stdout.splitlines() if "│ p " in line)
    assert "paused" in row and "+00:00" not in row
    shown = cli("show", "--id", "p").stdout
    next_line = next(line for line in shown.splitlines() if "next fire" in line)
    assert "paused" in next_line and "+00:00" not in next_line
    assert cli.json("show", "--id", "p")["upcoming"] == []


def test_next_for_a_stored_schedule_honours_after(kcli: Cli) -> None:
    cli = kcli
    cli("create", "--task", "cli:echo", "--schedule", "0 9 * * MON-FRI", "--id", "wk",
        "--tz", "Europe/Paris")  # fmt: skip
    fires = cli.json("next", "--schedule", "wk", "--after", "2030-01-04T10:00", "--count", "2")
    # 2030-01-04 is a Friday: after 10:00 Paris, Monday and Tuesday 09:00 (08:00 UTC).
    assert [f["fire_at"] for f in fires] == [
        "2030-01-07T09:00:00+01:00",
        "2030-01-08T09:00:00+01:00",
    ]
    merged = cli.json("next", "--after", "2030-01-04T10:00+01:00", "--count", "1")
    assert [f["fire_at"] for f in merged] == ["2030-01-07T09:00:00+01:00"]


def test_stats_and_history_count_the_same_statuses(kcli: Cli, tmp_path: Path) -> None:
    cli = kcli
    cli("create", "--task", "cli:short_timeout", "--schedule", "manual", "--id", "slow",
        "--retries", "0", "--timeout", "0.5")  # fmt: skip
    worker = Worker(cli.db_url, tmp_path / "w.log")
    try:
        worker.wait_ready()
        cli("run", "--id", "slow", "--wait", expect=1)
    finally:
        assert worker.terminate() == 0
    assert [r["status"] for r in cli.json("history", "--status", "timed_out")] == ["timed_out"]
    assert cli.json("history", "--status", "failed") == []
    (row,) = cli.json("stats")["tasks"]
    assert (row["failed"], row["timed_out"], row["succeeded"]) == (0, 1, 0)
    table = cli("stats").stdout
    assert "timed_out" in table


def test_a_zone_in_the_wrong_case_gets_a_suggestion(kcli: Cli) -> None:
    cli = kcli
    message = cli.error("create", "--task", "cli:echo", "--schedule", "5m", "--tz", "europe/paris")
    assert message.endswith("unknown time zone 'europe/paris': did you mean Europe/Paris?")
    assert "did you mean Europe/Paris?" in cli.error("validate", "5m", "--tz", "europe/paris")


async def test_a_zone_in_the_wrong_case_from_python(tmp_path: Path) -> None:
    import tests.cli.cli_tasks  # noqa: F401  # registers cli:echo here

    async with Scheduler(f"sqlite:///{tmp_path / 't.db'}", engine=False) as scheduler:
        with pytest.raises(ScheduleError, match=r"did you mean America/New_York\?"):
            await scheduler.add_schedule("cli:echo", "5m", timezone="america/new_york")


def test_root_help_lists_the_new_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--help"],
        cwd=ROOT,
        env=cli_env() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    for name in ("cancel", "backfill", "queue", "tasks", "--version"):
        assert name in proc.stdout
