"""The CLI against a server (``--url``/``--token``) prints what it prints on the database.

Each command runs twice against one ``tickwork serve`` process and its database: once
with ``--db`` (the database directly), once with ``--url`` (through the REST API),
in the table form and with ``--json``. Reads compare byte for byte; a write is made on
two schedules whose ids have the same length, and the outputs compare once the ids,
instants and elapsed times (which differ by the moment each ran) are masked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from json import loads

import pytest

from tests.api.conftest import ROOT, Server

_MASKS = (
    (re.compile(r'"(duration|p50_duration|p95_duration)": [0-9.e-]+'), r'"\1": <DUR>'),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?"), "<T>"),
    (re.compile(r"\b[0-9a-v]{26}\b"), "<RUN>"),
    (re.compile(r"\bvm:\d+:[0-9a-f]+|\b[\w.-]+:\d+:[0-9a-f]{6}\b"), "<NODE>"),
    (re.compile(r"\d+(\.\d+)? ?(ms|s)\b"), "<DUR>"),
    (re.compile(r"(in |)(\d+[dhms] ?){1,3}( ago)?"), "<REL>"),
)


_OWNER = re.compile(r'"owner": ("admin"|null)')
_OWNER_ROW = re.compile(r"^│ owner +│ admin +│\n", re.MULTILINE)


def masked(text: str, *ids: str) -> str:
    for ident in ids:
        text = text.replace(ident, "<ID>")
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


class Cli:
    """``tickwork`` on the server's database (``db``) or through the server (``url``)."""

    def __init__(self, server: Server) -> None:
        self.where = {
            "db": ["--db", server.db_url],
            "url": ["--url", server.url, "--token", server.admin_token or ""],
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
        self.env["COLUMNS"] = "200"

    def start(self, which: str, *args: str, json: bool = False) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tickwork.cli", *self.where[which],
             *(["--json"] if json else []), *args],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def __call__(self, which: str, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self.start(which, *args)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def cli(server: Server) -> Cli:
    return Cli(server)


def same(cli: Cli, *args: str, ids: tuple[str, str] | None = None) -> str:
    """Run ``args`` both ways, as tables and as JSON (the four at once), and check the
    outputs match. A write names its schedule ``{id}``: ``ids`` are the database's and
    the server's prefixes, and the table and JSON runs each work on their own schedule
    (suffix 1 and 2), so the four go through the same states. Returns the table output."""
    runs = {}
    for json in (False, True):
        for which, prefix in (("db", ids[0] if ids else ""), ("url", ids[1] if ids else "")):
            ident = f"{prefix}{2 if json else 1}" if ids else ""
            argv = [a.replace("{id}", ident) for a in args]
            runs[json, which, ident] = cli.start(which, *argv, json=json)
    outputs = {}
    for (json, which, ident), proc in runs.items():
        out, err = proc.communicate(timeout=120)
        if ids:
            # What differs by design: a schedule made through the server is owned by
            # the caller ("admin"); one made on the database directly by no one.
            out = _OWNER_ROW.sub("", _OWNER.sub('"owner": <OWNER>', out))
        mask = [ident] if ident else []
        outputs[json, which] = (proc.returncode, masked(out, *mask), masked(err, *mask))
    for json in (False, True):
        db, url = outputs[json, "db"], outputs[json, "url"]
        assert db == url, f"{args} (json={json}) differ:\n{db}\n---\n{url}"
    return outputs[False, "db"][1]


@pytest.mark.timeout(600)
def test_reads_print_the_same_through_the_server(server: Server, cli: Cli) -> None:
    def db(*args: str) -> subprocess.CompletedProcess[str]:
        return cli("db", *args)

    made = db("create", "--task", "api:echo", "--schedule", "0 9 * * *", "--id", "s1",
              "--data", '{"a": 1}', "--tz", "Europe/Paris", "--tag", "x")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert db("create", "--task", "api:sleep", "--schedule", "every 5m", "--id", "s2",
              "--paused").returncode == 0  # fmt: skip
    assert db("run", "--id", "s1", "--wait").returncode == 0
    for args in (
        ("show", "--id", "s1"),
        ("show", "--id", "s2"),
        ("list",),
        ("list", "--status", "paused"),
        ("history",),
        ("history", "--schedule", "s1", "--status", "succeeded", "--limit", "5"),
        ("next",),
        ("next", "--schedule", "s1", "--after", "2027-01-01T00:00"),
        ("stats",),
        ("tasks",),
        ("queue", "read", "nothing-here"),
        ("token", "list"),
        ("audit", "--limit", "5"),
        ("show", "--id", "missing"),
    ):
        same(cli, *args)
    status = cli("url", "status")
    assert status.returncode == 0 and f"server: {server.url}" in status.stdout


@pytest.mark.timeout(600)
def test_writes_print_the_same_through_the_server(server: Server, cli: Cli) -> None:
    ids = ("wdb", "wur")
    create = ("create", "--task", "api:echo", "--schedule", "every 1h", "--id", "{id}")
    same(cli, *create, "--data", '{"k": 1}', "--tag", "t", "--retries", "2", "--timeout", "30",
         ids=ids)  # fmt: skip
    same(cli, "update", "--id", "{id}", "--name", "renamed", "--priority", "3", ids=ids)
    same(cli, "pause", "--id", "{id}", ids=ids)
    same(cli, "pause", "--id", "{id}", ids=ids)  # already paused
    same(cli, "resume", "--id", "{id}", ids=ids)
    out = same(cli, "run", "--id", "{id}", "--wait", ids=ids)
    assert "succeeded" in out
    same(cli, "backfill", "--id", "{id}", "--start", "2026-01-01T00:00:00Z",
         "--end", "2026-01-01T03:00:00Z", ids=ids)  # fmt: skip
    same(cli, "delete", "--id", "{id}", "--confirm", ids=ids)
    # Errors: the same message and exit status.
    same(cli, "create", "--task", "nope:task", "--schedule", "every 1h", "--id", "{id}", ids=ids)
    same(cli, "create", "--task", "api:echo", "--schedule", "0 0 30 2 *", "--id", "{id}", ids=ids)
    same(cli, "update", "--id", "{id}", "--name", "x", ids=ids)
    same(cli, "run", "--id", "{id}", ids=ids)


def test_pause_and_resume_record_their_reason_both_ways(server: Server, cli: Cli) -> None:
    for which in ("db", "url"):
        ident = f"why-{which}"
        made = cli(which, "create", "--task", "api:echo", "--schedule", "every 1h", "--id", ident)
        assert made.returncode == 0, made.stderr
        for verb, why in (("pause", "database moving, back at 18:00"), ("resume", "moved")):
            done = cli(which, verb, "--id", ident, "--reason", why)
            assert done.returncode == 0, done.stderr
        done = cli(which, "--json", "audit", "--target", f"schedule:{ident}", "--limit", "2")
        reasons = [(e["action"], e["reason"]) for e in loads(done.stdout)]
        assert reasons == [
            ("schedule.resumed", "moved"),
            ("schedule.paused", "database moving, back at 18:00"),
        ], which
    for which in ("db", "url"):  # every schedule at once, too
        assert cli(which, "pause", "--reason", f"all, {which}").returncode == 0
        assert cli(which, "resume").returncode == 0
        done = cli(which, "--json", "audit", "--target", "schedule:why-db", "--limit", "2")
        assert [e["reason"] for e in loads(done.stdout)] == [None, f"all, {which}"]


def test_what_only_the_database_can_do_says_so(server: Server, cli: Cli) -> None:
    for args in (("db", "upgrade"), ("cleanup",), ("worker",)):
        done = cli("url", *args)
        assert done.returncode != 0
        assert "--db" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_bad_token_or_no_server_is_a_clear_error(server: Server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}

    def tickwork(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tickwork.cli", *args], cwd=ROOT, env={**env, **extra},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    bad = tickwork("--url", server.url, "--token", "wrong", "list")
    assert bad.returncode == 1 and "error:" in bad.stderr and "credentials" in bad.stderr
    # TICKWORK_URL and TICKWORK_TOKEN from the environment do the same as the flags.
    ok = tickwork("list", TICKWORK_URL=server.url, TICKWORK_TOKEN=server.admin_token or "")
    assert ok.returncode == 0, ok.stderr
    # A --db on the command line beats TICKWORK_URL from the environment.
    local = tickwork("--db", server.db_url, "list", TICKWORK_URL="http://127.0.0.1:9")
    assert local.returncode == 0, local.stderr
    down = tickwork("--url", "http://127.0.0.1:9", "--token", "x", "list")
    assert down.returncode == 1 and "cannot reach the tickwork server" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_password_in_the_servers_url_is_never_printed(server: Server) -> None:
    """A URL given to ``--url`` with a password in it (``https://user:password@host``)
    is shown with ``***`` in its place, as a database URL is, in every error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWORK_")}
    secret = "pw-in-the-url-0123"

    def tickwork(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tickwork.cli", *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    down = tickwork("--url", f"http://ops:{secret}@127.0.0.1:9", "--token", "x", "list")
    assert down.returncode == 1 and "http://ops:***@127.0.0.1:9" in down.stderr, down.stderr
    wrong = tickwork("--url", f"ftp://ops:{secret}@127.0.0.1:9", "list")
    assert wrong.returncode != 0 and "ftp://ops:***@127.0.0.1:9" in wrong.stderr, wrong.stderr
    with_userinfo = server.url.replace("http://", f"http://ops:{secret}@")
    refused = tickwork("--url", with_userinfo, "--token", server.admin_token or "", "status")
    assert refused.returncode == 1, refused.stdout
    for done in (down, wrong, refused):
        assert secret not in done.stdout + done.stderr
