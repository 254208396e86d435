"""Options that contradict each other are refused (exit 2, both named), never settled
silently; and ``update --help`` claims no default, since update leaves alone what it is
not given."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_TOKEN, Server, start_server
from tests.cli.conftest import Cli
from tickwork.store import open_store


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    """``tickwork serve`` on this test's own SQLite file."""
    started = start_server(sqlite_url, tmp_path)
    yield started
    started.stop(signal.SIGTERM, 10)


def test_an_admin_token_cannot_be_read_only(cli: Cli) -> None:
    message = cli.error("token", "create", "--user", "a", "--admin", "--read-only", code=2)
    assert "--admin" in message and "--read-only" in message
    assert cli.json("token", "list") == []  # nothing was made
    # Each alone is what it says.
    cli("token", "create", "--user", "boss", "--admin")
    cli("token", "create", "--user", "reader", "--read-only")
    roles = {t["user"]: (t["role"], t["admin"], t["read_only"]) for t in cli.json("token", "list")}
    assert roles == {"boss": ("admin", True, False), "reader": ("read-only", False, True)}


def test_the_api_refuses_the_same_token(server: Server) -> None:
    answer = server.admin.post("/tokens", json={"user": "a", "admin": True, "read_only": True})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"] == "read_only"
    assert "admin" in error["message"] and "read-only" in error["message"]
    assert [t for t in server.admin.get("/tokens").json()["items"] if t["user"] == "a"] == []
    remote = Cli("", {"TICKWORK_URL": server.url, "TICKWORK_TOKEN": ADMIN_TOKEN})
    message = remote.error("token", "create", "--user", "a", "--admin", "--read-only", code=2)
    assert "--admin" in message and "--read-only" in message


def _help(cli: Cli, command: str) -> str:
    """``tickwork COMMAND --help`` on one line, without the box drawing."""
    text = cli(command, "--help", timeout=60).stdout
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def test_update_help_claims_no_default(cli: Cli) -> None:
    update = _help(cli, "update")
    assert "default" not in update.replace("--default-", ""), update
    assert "only the options given change" in update
    # create says what a new schedule gets.
    create = _help(cli, "create")
    for default in ("(default: UTC)", "(default: skip)", "(default: latest)", "(default: 30)"):
        assert default in create, create


def test_json_and_format_table_conflict(cli: Cli) -> None:
    message = cli.error("--json", "list", "--format", "table", code=2)
    assert "--json" in message and "--format table" in message
    message = cli.error("list", "--format", "table", "--json", code=2)
    assert "--json" in message and "--format table" in message
    # Agreeing forms are fine.
    assert cli.json("list", "--format", "json") == []
    assert cli.json("list") == []


def test_db_and_url_conflict(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    both = Cli(sqlite_url)
    message = both.error("--url", "http://127.0.0.1:9", "list", code=2)
    assert "--db" in message and "--url" in message
    message = both.error("list", "--url", "http://127.0.0.1:9", code=2)
    assert "--db" in message and "--url" in message
    # Both only in the environment: either could be meant.
    env = Cli("", {"TICKWORK_DB": sqlite_url, "TICKWORK_URL": "http://127.0.0.1:9"})
    message = env.error("list", code=2)
    assert "TICKWORK_DB" in message and "TICKWORK_URL" in message
    # A flag beats the other from the environment.
    assert env.json("--db", sqlite_url, "list") == []
    dead = env.error("--url", "http://127.0.0.1:9", "list")
    assert "cannot reach the tickwork server at http://127.0.0.1:9" in dead


def test_history_of_one_run_takes_no_list_filters(cli: Cli) -> None:
    # Before: the filters were ignored and the run shown whatever its status.
    message = cli.error("history", "--run", "r1", "--status", "failed", code=2)
    assert "--run" in message and "--status" in message
    message = cli.error("history", "--schedule", "s", "--limit", "3", "--run", "r1", code=2)
    assert "--run" in message and "--schedule, --limit" in message
    # Alone, --run looks the run up.
    assert cli.error("history", "--run", "r1") == "error: run 'r1' not found"


def test_run_timeout_without_wait_is_a_usage_error(cli: Cli) -> None:
    assert "--timeout only makes sense with --wait" in cli.error(
        "run", "--id", "x", "--timeout", "5", code=2
    )


def test_a_node_refuses_a_server_url_naming_where_it_came_from() -> None:
    message = Cli("", {"TICKWORK_URL": "http://127.0.0.1:9"}).error("worker")
    assert "TICKWORK_URL" in message and "--db" in message
