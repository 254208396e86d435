"""The CLI answers the same on the database (``--db``) and through a server (``--url``):
values no schedule can hold are refused alike (a usage error naming the option, never a
traceback, never a value one side keeps and the other refuses), and what ``tests/api/
test_cli_remote.py`` does not compare (``status``, ``tasks`` as JSON) prints the same."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_TOKEN, Server, start_server
from tests.cli.conftest import Cli
from tests.store.conftest import make_schedule
from tickwork.store import open_store


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    """``tickwork serve`` on this test's own SQLite file (its tasks: ``api:*``)."""
    started = start_server(sqlite_url, tmp_path)
    yield started
    started.stop(signal.SIGTERM, 10)


def both(server: Server) -> dict[str, Cli]:
    """The CLI on the server's database, and through the server."""
    remote = Cli("", {"TICKWORK_URL": server.url, "TICKWORK_TOKEN": ADMIN_TOKEN})
    return {"db": Cli(server.db_url), "url": remote}


def refused(proc: subprocess.CompletedProcess[str], option: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert option in proc.stderr, proc.stderr


#: (option, value): each past what the REST API takes for that field; before, on the
#: database some were kept and some failed with a traceback (SQLite's integers end at
#: 2**63).
OUT_OF_RANGE = [
    ("--priority", "99999999999999999999"),
    ("--priority", "-1000001"),
    ("--max-instances", "99999999999999999999"),
    ("--max-instances", "10001"),
    ("--max-executions", "99999999999999999999"),
    ("--max-executions", "2147483648"),
    ("--retries", "1000"),
    ("--retry-delay", "1e300"),
    ("--misfire-grace", "1e300"),
    ("--jitter", "1e10"),
    ("--timeout", "1e300"),
]


@pytest.mark.timeout(300)
def test_numbers_out_of_range(server: Server) -> None:
    clis = both(server)
    clis["db"]("create", "--task", "api:echo", "--schedule", "manual", "--id", "s")
    for option, value in OUT_OF_RANGE:
        for cli in clis.values():
            created = cli("create", "--task", "api:echo", "--schedule", "manual", option, value,
                          expect=None)  # fmt: skip
            refused(created, f"'{option}'")
            updated = cli("update", "--id", "s", option, value, expect=None)
            refused(updated, f"'{option}'")
    assert [s["id"] for s in clis["db"].json("list")] == ["s"]
    # The edges themselves are fine, alike.
    for where, cli in clis.items():
        cli("create", "--task", "api:echo", "--schedule", "manual", "--id", f"edge-{where}",
            "--priority", "-1000000", "--max-instances", "10000", "--retries", "999",
            "--max-executions", "2147483647", "--timeout", "1000000000")  # fmt: skip


def test_list_limit_out_of_range(server: Server) -> None:
    for cli in both(server).values():
        message = cli.error("list", "--limit", "99999999999999999999", code=2)
        assert "--limit must be between 1 and 100000" in message


def test_an_empty_queue_name(server: Server) -> None:
    messages = {w: cli.error("queue", "read", "", code=2) for w, cli in both(server).items()}
    assert messages["db"] == messages["url"]
    assert "NAME is empty" in messages["db"]


def test_queue_read_takes_a_limit_past_one_page_of_the_api(server: Server) -> None:
    """``--limit`` goes to 10000 on both sides: through a server the messages are read
    a page at a time, so a limit past the API's largest page (500) is no error."""
    clis = both(server)
    clis["db"]("create", "--task", "api:echo", "--schedule", "manual", "--id", "q",
               "--result-queue", "out")  # fmt: skip
    for _ in range(3):
        clis["db"]("run", "--id", "q", "--wait")
    read = {w: cli.json("queue", "read", "out", "--limit", "600") for w, cli in clis.items()}
    assert len(read["db"]) == 3 and read["url"] == read["db"]


def test_revoked_tokens_are_listed_from_the_database_only(server: Server) -> None:
    clis = both(server)
    made = clis["db"].json("token", "create", "--user", "gone")
    clis["db"]("token", "revoke", made["id"])
    listed = clis["db"].json("token", "list", "--revoked")
    assert [t["id"] for t in listed if t["revoked_at"]] == [made["id"]]
    # The API lists the tokens in force only: through it, --revoked would show none of
    # them under a "revoked" column.
    message = clis["url"].error("token", "list", "--revoked")
    assert "token list --revoked works on the database itself" in message
    assert made["id"] not in clis["url"]("token", "list").stdout


def test_revoking_a_token_again_fails_alike(server: Server) -> None:
    clis = both(server)
    for where, cli in clis.items():
        made = clis["db"].json("token", "create", "--user", f"twice-{where}")
        cli("token", "revoke", made["id"])
        assert cli.error("token", "revoke", made["id"]) == (
            f"error: token {made['id']!r} is already revoked"
        )


def test_once_with_another_max_executions_is_a_usage_error(server: Server) -> None:
    for cli in both(server).values():
        message = cli.error("create", "--task", "api:echo", "--schedule", "manual", "--once",
                            "--max-executions", "3", code=2)  # fmt: skip
        assert "--once" in message and "--max-executions 3" in message


@pytest.fixture
def cli_server(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server that also knows the CLI test tasks (``cli:short_timeout`` declares
    ``timeout=1``, an int)."""
    started = start_server(sqlite_url, tmp_path, args=("--import", "tests.cli.cli_tasks"))
    yield started
    started.stop(signal.SIGTERM, 10)


def test_status_and_tasks_print_the_same_json_through_a_server(cli_server: Server) -> None:
    clis = both(cli_server)
    clis["db"]("create", "--task", "cli:echo", "--schedule", "manual", "--id", "e")
    assert clis["db"].json("run", "--id", "e", "--wait")["status"] == "succeeded"
    # Before: through a server, status also counted finished runs (succeeded: 1...).
    runs = {where: cli.json("status")["runs"] for where, cli in clis.items()}
    assert runs["db"] == runs["url"] == {"pending": 0, "running": 0, "retrying": 0, "backlog": 0}
    # Before: "timeout": 1 on the database, 1.0 through the server.
    tasks = {where: cli.json("tasks") for where, cli in clis.items()}
    assert tasks["db"] == tasks["url"]
    short = next(t for t in tasks["db"] if t["name"] == "cli:short_timeout")
    assert short["timeout"] == 1.0 and isinstance(short["timeout"], float)
    # A tuple of any length is spelled as such, by the API and on either side.
    (sleep,) = (
        t for t in cli_server.admin.get("/tasks").json()["items"] if t["name"] == "cli:sleep"
    )
    assert sleep["types"]["splits"]["annotation"] == "tuple[float, ...]"
    assert sleep["types"]["splits"]["tuple"] is True
    # The defaults the node published, as JSON.
    assert sleep["defaults"] == {"seconds": 2.0, "laps": None, "splits": []}
    for cli in clis.values():
        assert "splits: tuple[float, ...] = []" in cli("tasks").stdout


def test_without_a_good_token_the_server_refusal_says_how_to_give_one(server: Server) -> None:
    none = Cli("", {"TICKWORK_URL": server.url})
    assert "--token T or TICKWORK_TOKEN" in none.error("list")
    wrong = Cli("", {"TICKWORK_URL": server.url, "TICKWORK_TOKEN": "wrong"})
    message = wrong.error("list")
    assert "credentials" in message and "--token T or TICKWORK_TOKEN" in message


def test_an_empty_task_or_schedule_is_named_alike(server: Server) -> None:
    clis = both(server)
    clis["db"]("create", "--task", "api:echo", "--schedule", "manual", "--id", "s")
    for args, option in (
        (["create", "--task", " ", "--schedule", "5m"], "--task is empty"),
        (["create", "--task", "api:echo", "--schedule", ""], "--schedule is empty"),
        (["update", "--id", "s", "--task", ""], "--task is empty"),
        (["update", "--id", "s", "--schedule", "  "], "--schedule is empty"),
    ):
        # Before: "schedule must be a non-empty expression" on the database, "schedule:
        # String should have at least 1 character" through the server.
        messages = {w: cli.error(*args, code=2) for w, cli in clis.items()}
        assert messages["db"] == messages["url"] and option in messages["db"], messages


def test_data_with_a_lone_surrogate_is_refused_alike(server: Server) -> None:
    clis = both(server)
    clis["db"]("create", "--task", "api:echo", "--schedule", "manual", "--id", "s")
    bad = '{"a": "\\ud800"}'  # valid JSON text, but no UTF-8 can hold what it means
    for args in (
        ["create", "--task", "api:echo", "--schedule", "manual", "--data", bad],
        ["update", "--id", "s", "--data", bad],
        ["run", "--id", "s", "--data", bad],
    ):
        # Before: through a server, a traceback (UnicodeEncodeError) sending it.
        messages = {w: cli.error(*args) for w, cli in clis.items()}
        assert messages["db"] == messages["url"], messages
        assert "data is not valid UTF-8 text" in messages["db"]


def test_overdue_fires_are_counted_alike_through_a_server(server: Server) -> None:
    """The server's engine is held (SIGSTOP) so that nothing fires the schedules stored
    as overdue; both ways count them and age the oldest alike."""
    (node,) = server.admin.get("/nodes").json()["items"]
    engine = int(node["pid"])
    os.kill(engine, signal.SIGSTOP)
    try:
        now = datetime.now(UTC)
        store = open_store(server.db_url)
        try:
            for sid, ago in (("late-1", timedelta(hours=2)), ("late-2", timedelta(minutes=9))):
                store.add_schedule(make_schedule(sid, "api:echo", next_fire_at=now - ago))
        finally:
            store.close()
        clis = both(server)
        overdue = {where: cli.json("status")["overdue"] for where, cli in clis.items()}
    finally:
        os.kill(engine, signal.SIGCONT)
    for where in ("db", "url"):
        assert overdue[where]["schedules"] == 2 and overdue[where]["grace"] == 60, overdue
        assert 7199 < overdue[where]["oldest_seconds"] < 7260, overdue


def test_every_bad_field_of_a_create_or_update_is_named_alike(server: Server) -> None:
    """A refused create or update prints one line per field at fault, naming it, and
    exits 1, on the database and through a server alike (before: only the first)."""
    clis = both(server)
    clis["db"]("create", "--task", "api:report", "--schedule", "manual", "--id", "r",
               "--data", '{"region": "eu"}')  # fmt: skip
    for args in (
        ["create", "--task", "api:report", "--schedule", "0 0 32 * *", "--tz", "Mars/Base",
         "--data", '{"region": 1, "filters": {"ids": [1, "2"]}}'],
        ["update", "--id", "r", "--schedule", "0 0 32 * *", "--tz", "Mars/Base",
         "--data", '{"region": 1, "filters": {"ids": [1, "2"]}}'],
    ):  # fmt: skip
        outputs = {}
        for where, cli in clis.items():
            proc = cli(*args, expect=1)
            assert "Traceback" not in proc.stderr, proc.stderr
            outputs[where] = proc.stderr.splitlines()
        assert outputs["db"] == outputs["url"], outputs
        assert outputs["db"] == [
            "error: timezone: unknown time zone 'Mars/Base'",
            "error: schedule: day-of-month 32 out of range 1-31",
            "error: data.region must be a string, not the number 1 "
            "(task 'api:report' takes region: str)",
            "error: data.filters.ids[1] must be an integer, not the string '2' "
            "(task 'api:report' takes filters: dict[str, list[int]] | None)",
        ], outputs
    # One field at fault: its message alone, as ever.
    for cli in clis.values():
        assert cli.error("update", "--id", "r", "--tz", "Mars/Base") == (
            "error: unknown time zone 'Mars/Base'"
        )


def test_an_id_no_record_can_have_is_not_found_alike(server: Server) -> None:
    """An empty id, or one holding '/', names no record: through a server it is the same
    "not found" as on the database, not a traceback nor another route's answer."""
    clis = both(server)
    for ident in ("", "a/b"):
        for args in (
            ["show", "--id", ident],
            ["run", "--id", ident],
            ["pause", "--id", ident],
            ["resume", "--id", ident],
            ["update", "--id", ident, "--priority", "1"],
            ["delete", "--id", ident, "--confirm"],
            ["backfill", "--id", ident, "--start", "2026-01-01T00:00:00Z",
             "--end", "2026-01-02T00:00:00Z"],
            ["next", "--schedule", ident],
            ["history", "--run", ident],
            ["cancel", "--run", ident],
            ["token", "revoke", ident],
        ):  # fmt: skip
            said = {where: cli.error(*args) for where, cli in clis.items()}
            assert said["url"] == said["db"], (args, said)
            assert "Traceback" not in said["url"] and "not found" in said["url"], (args, said)


def test_an_empty_filter_is_refused_alike(server: Server) -> None:
    """``list --task ''`` listed nothing, as if no schedule had that task: a blank filter
    (an unset variable in a script) is named instead, on both sides."""
    for args, option in (
        (["list", "--task", ""], "--task"),
        (["list", "--tag", " "], "--tag"),
        (["history", "--task", ""], "--task"),
        (["audit", "--actor", ""], "--actor"),
        (["audit", "--target", ""], "--target"),
    ):
        said = {w: cli.error(*args, code=2) for w, cli in both(server).items()}
        assert said["db"] == said["url"], said
        assert f"{option} is empty" in said["db"], said
