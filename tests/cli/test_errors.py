"""Every bad input gives one clear line on stderr (``error: ...``), exit 1, no traceback."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.conftest import ROOT, Cli, cli_env
from tickwork import Scheduler, TaskRegistry, task


def test_unknown_task_lists_the_known_ones(wcli: Cli) -> None:
    message = wcli.error("create", "--task", "nope:missing", "--schedule", "5m")
    assert "unknown task 'nope:missing'" in message
    assert "cli:echo" in message and "cli:sleep" in message


def test_unknown_task_on_an_empty_database(cli: Cli) -> None:
    message = cli.error("create", "--task", "nope", "--schedule", "5m")
    assert message.startswith("error: unknown task 'nope'; known tasks: none")
    assert "tickwork worker --import MODULE" in message


def test_bad_json_in_data(wcli: Cli) -> None:
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "5m", "--data", "{oops")
    assert message.startswith("error: --data is not valid JSON")
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "5m", "--data", "[1, 2]")
    assert message.startswith("error: --data must be a JSON object")


def test_bad_cron_gives_the_parser_message(wcli: Cli) -> None:
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "0 0 32 * *")
    assert "day-of-month" in message and "32" in message
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "0 0 30 2 *")
    assert message.startswith("error: ")


def test_bad_timezone(wcli: Cli) -> None:
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "5m", "--tz", "Mars/Base")
    assert "Mars/Base" in message


def test_bad_policy_names_the_field(wcli: Cli) -> None:
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "5m", "--overlap", "maybe")
    assert "overlap" in message and "skip" in message
    proc = wcli("create", "--task", "cli:echo", "--schedule", "5m", "--retries", "-1", expect=2)
    assert "Invalid value for '--retries'" in proc.stderr
    message = wcli.error(
        "create",
        "--task",
        "cli:echo",
        "--schedule",
        "5m",
        "--once",
        "--max-executions",
        "3",
        code=2,
    )
    assert "--once" in message


def test_duplicate_id(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "dup")
    message = wcli.error("create", "--task", "cli:echo", "--schedule", "5m", "--id", "dup")
    assert message == "error: schedule 'dup' already exists"


@pytest.mark.parametrize(
    "args",
    [
        ("show", "--id", "ghost"),
        ("update", "--id", "ghost", "--priority", "1"),
        ("delete", "--id", "ghost", "--confirm"),
        ("run", "--id", "ghost"),
        ("pause", "--id", "ghost"),
        ("resume", "--id", "ghost"),
        ("history", "--schedule", "ghost"),
        ("next", "--schedule", "ghost"),
    ],
)
def test_unknown_id(cli: Cli, args: tuple[str, ...]) -> None:
    assert cli.error(*args) == "error: schedule 'ghost' not found"


def test_unknown_run_id(cli: Cli) -> None:
    assert cli.error("history", "--run", "nope") == "error: run 'nope' not found"


def test_delete_without_confirm_refuses_when_not_interactive(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "keep-me")
    message = wcli.error("delete", "--id", "keep-me")
    assert "--confirm" in message
    assert wcli.json("show", "--id", "keep-me")["id"] == "keep-me"


def test_update_without_options(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "unchanged")
    assert "nothing to change" in wcli.error("update", "--id", "unchanged")


def test_bad_filters(cli: Cli) -> None:
    """A filter or format not among its choices is a usage error (exit 2), as a value out
    of its range is (a schedule's own fields are checked with the others: exit 1)."""
    assert "--status 'sleeping'" in cli.error("list", "--status", "sleeping", code=2)
    assert "--status 'meh'" in cli.error("history", "--status", "meh", code=2)
    assert "--format" in cli.error("list", "--format", "yaml", code=2)


def test_a_server_that_does_not_answer_is_named(cli: Cli) -> None:
    # --url sends the command to a server (tests/api/test_cli_remote.py); none listens here.
    message = Cli("").error("--url", "http://127.0.0.1:9", "list")
    assert "cannot reach the tickwork server at http://127.0.0.1:9" in message
    assert "--token is for a tickwork server" in cli.error("--token", "t", "list")


def test_worker_with_a_missing_module(cli: Cli) -> None:
    message = cli.error("worker", "--import", "no_such_module_here")
    assert message.startswith("error: cannot import 'no_such_module_here'")


def test_worker_told_a_file_or_nothing_names_the_module_to_give(cli: Cli) -> None:
    """Before: 'no such module' for a file's path, and a traceback for an empty name."""
    assert cli.error("worker", "--import", "examples/tasks.py") == (
        "error: cannot import 'examples/tasks.py': give the module's name, not a file's "
        "path: --import examples.tasks"
    )
    assert cli.error("worker", "--import", "./examples/tasks.py").endswith(
        "--import examples.tasks"
    )
    away = cli.error("worker", "--import", "/srv/jobs/nightly.py")
    assert away.endswith("put its directory (/srv/jobs) on PYTHONPATH and --import nightly")
    assert cli.error("worker", "--import", "") == (
        "error: cannot import '': give a module's name, such as examples.tasks"
    )
    assert "not a module's name" in cli.error("worker", "--import", "examples.tasks:")


def test_usage_errors_exit_2(cli: Cli) -> None:
    proc = cli("create", "--schedule", "5m", expect=2)
    assert "--task" in proc.stderr


def test_worker_with_a_bad_log_level(cli: Cli) -> None:
    assert cli.error("worker", "--log-level", "loud") == (
        "error: log_level = 'loud' (from --log-level): not one of debug, info, warning, error"
    )


def test_ctrl_c_while_waiting_for_a_run_names_the_run_that_goes_on(cli: Cli) -> None:
    """Before: "error: interrupted", the run's id never printed."""
    registry = TaskRegistry()

    @task("cli:nowhere", registry=registry)
    def nowhere() -> None: ...

    async def add() -> None:
        async with Scheduler(cli.db_url, engine=False, registry=registry) as client:
            await client.add_schedule("cli:nowhere", "manual", id="waits")

    asyncio.run(add())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickwork.cli", "--db", cli.db_url, "run", "--id", "waits",
         "--wait"],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    # No node has the task: the command warns, then waits for the run.
    assert "no running node has task 'cli:nowhere'" in proc.stderr.readline()
    [pending] = cli.json("history", "--schedule", "waits")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert err.strip() == (
        f"error: interrupted: stopped waiting for run {pending['id']}, which goes on "
        f"(tickwork history --run {pending['id']})"
    )
    assert cli.json("history", "--run", pending["id"])["status"] == "pending"
