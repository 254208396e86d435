"""Commands that need no running node: db upgrade, cleanup, status, the database default,
interactive delete, times given with and without a zone."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, Cli, Worker, cli_env
from tests.store.conftest import open_at_version
from tickwork.models import Node
from tickwork.store import open_store
from tickwork.store.migrate import load_migrations


@pytest.mark.empty_database
def test_db_upgrade_and_cleanup_on_a_new_database(cli: Cli) -> None:
    assert "up to date" in cli("db", "upgrade").stdout
    upgraded = cli.json("db", "upgrade")
    assert upgraded["applied"] == []
    assert cli.json("cleanup", "--older-than-days", "0") == {"deleted": 0, "older_than_days": 0}
    assert "deleted 0 run(s)" in cli("cleanup").stdout


@pytest.mark.empty_database
def test_db_upgrade_names_the_migrations_it_applied_to_an_older_database(
    db_url: str, tmp_path: Path
) -> None:
    """Opening the database migrates it: before, ``db upgrade`` then found nothing left
    and said the database was up to date, having just upgraded it."""
    dialect = "postgres" if db_url.startswith("postgres") else "sqlite"
    newer = [version for version, _ in load_migrations(dialect) if version > 15]
    open_at_version(db_url, 15).close()
    assert Cli(db_url).json("db", "upgrade")["applied"] == newer
    assert Cli(db_url).json("db", "upgrade")["applied"] == []
    old_file = f"sqlite:///{tmp_path / 'old.db'}"
    open_at_version(old_file, 15).close()
    said = Cli(old_file)("db", "upgrade").stdout
    assert said.startswith(f"applied migration(s) {', '.join(map(str, newer))} to "), said


def test_status_without_nodes(cli: Cli) -> None:
    assert "no node is running" in cli("status").stdout
    status = cli.json("status")
    assert status["nodes"] == [] and status["running"] == 0 and status["backlog"] == 0
    assert cli("list").stdout.strip() == "no schedules"
    assert cli.json("list") == []
    assert cli.json("history") == []
    assert "no runs yet" in cli("stats").stdout


def test_status_warns_of_the_tasks_a_node_gave_up_on(cli: Cli) -> None:
    """A node whose heartbeat reported threads or coroutines still running tasks it gave
    up on is named, with what is stuck and what to do about a coroutine."""
    now = datetime.now(UTC)
    store = open_store(cli.db_url)
    try:  # two nodes on another host, as their own heartbeats would have written them
        for node in ("vm:1:calm", "vm:2:deaf"):
            store.register_node(Node(node, "elsewhere", 1, now, now))
        lease = now + timedelta(seconds=30)
        store.heartbeat("vm:2:deaf", now, lease, [], stuck_threads=1, stuck_coroutines=2)
    finally:
        store.close()
    said = [line for line in cli("status").stdout.splitlines() if line.startswith("node ")]
    assert said == [
        "node vm:2:deaf: 1 thread(s) still running a sync task whose attempt ended (timed "
        "out or cancelled); each was replaced",
        "node vm:2:deaf: 2 coroutine(s) still running an async task that ignored its "
        "cancellation (timeout, cancel request, takeover or shutdown); let the task return "
        "on asyncio.CancelledError",
    ]
    nodes = cli.json("status")["nodes"]
    assert [(n["id"], n["stuck_threads"], n["stuck_coroutines"]) for n in nodes] == [
        ("vm:1:calm", 0, 0),
        ("vm:2:deaf", 1, 2),
    ]


def test_db_defaults_to_tickwork_db_env(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"

    def tickwork(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tickwork.cli", *args],
            cwd=ROOT,
            env=cli_env() | {"TICKWORK_DB": url},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )

    # Reading a database that does not exist names it instead of creating it.
    missing = tickwork("--json", "list")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: database {tmp_path / 'from-env.db'} does not exist ({url}); give --db "
        "(or TICKWORK_DB), or create it: tickwork db upgrade, tickwork worker or tickwork create"
    )
    assert not (tmp_path / "from-env.db").exists()
    assert tickwork("db", "upgrade").returncode == 0
    listed = tickwork("--json", "list")
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"


def test_bad_database_url(tmp_path: Path) -> None:
    message = Cli("mysql://nope/db").error("list")
    assert "invalid database URL" in message and "mysql" in message


def test_start_and_end_naive_times_are_in_the_schedule_zone(wcli: Cli) -> None:
    created = wcli.json(
        "create",
        "--task", "cli:echo",
        "--schedule", "0 9 * * *",
        "--tz", "America/New_York",
        "--start-at", "2031-03-01 00:00",
        "--end-at", "2031-03-31T23:59:59Z",
        "--id", "march-2031",
    )  # fmt: skip
    start = datetime.fromisoformat(created["start_at"])
    assert start.utcoffset() is not None
    assert start.isoformat().startswith("2031-03-01T05:00:00")  # midnight EST in UTC
    nxt = datetime.fromisoformat(created["next_fire_at"])
    assert nxt.isoformat().startswith("2031-03-01T14:00:00")  # 09:00 EST
    shown = wcli("show", "--id", "march-2031").stdout
    assert "2031-03-01 09:00:00-05:00" in shown
    assert "At 09:00" in shown or "09:00" in shown


def test_delete_asks_on_a_terminal(wcli: Cli) -> None:
    wcli("create", "--task", "cli:echo", "--schedule", "5m", "--id", "ask-me")
    answer_no = _with_terminal(wcli, ["delete", "--id", "ask-me"], "n\n")
    assert answer_no[0] == 1 and "Delete schedule ask-me" in answer_no[1]
    assert wcli.json("show", "--id", "ask-me")["id"] == "ask-me"
    answer_yes = _with_terminal(wcli, ["delete", "--id", "ask-me"], "y\n")
    assert answer_yes[0] == 0, answer_yes[1]
    assert "deleted schedule ask-me" in answer_yes[1]
    wcli.error("show", "--id", "ask-me")


def test_worker_banner_names_node_db_and_tasks(worker: Worker) -> None:
    banner = next(
        line for line in worker.output().splitlines() if line.startswith("tickwork worker:")
    )
    assert "node " in banner and "sqlite:///" in banner
    assert "4 task(s): cli:echo, cli:fail, cli:short_timeout, cli:sleep" in banner


def _with_terminal(cli: Cli, args: list[str], typed: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout; type ``typed`` when asked."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickwork.cli", "--db", cli.db_url, *args],
        cwd=ROOT,
        env=cli_env(),
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    output = b""
    typed_yet = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if not typed_yet and b"?" in output:
                    os.write(master, typed.encode())
                    typed_yet = True
            elif proc.poll() is not None:
                break
        code = proc.wait(10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, output.decode(errors="replace")


def test_python_dash_m_tickwork_is_the_tickwork_command(cli: Cli) -> None:
    """Where the script is not on PATH: ``python -m tickwork`` works as ``tickwork``."""
    as_module = subprocess.run(
        [sys.executable, "-m", "tickwork", "--db", cli.db_url, "--json", "status"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert as_module.returncode == 0, as_module.stderr
    assert json.loads(as_module.stdout) == json.loads(cli("--json", "status").stdout)
    usage = subprocess.run(
        [sys.executable, "-m", "tickwork", "--help"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert usage.returncode == 0 and "Usage: tickwork " in usage.stdout
