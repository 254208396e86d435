"""Bad storage and bad input give one clear line, at once: no traceback, no wait."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import ROOT, Cli, cli_env
from tickwork import Scheduler
from tickwork.errors import TickworkError, ValidationError


def _run(
    args: list[str], prefix: tuple[str, ...] = (), **popen: Any
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    popen.setdefault("cwd", ROOT)
    popen.setdefault("env", cli_env())
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "tickwork.cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        **popen,
    )
    return time.monotonic() - started, proc


def _error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), proc.stderr
    return lines


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = _error_lines(proc)
    assert len(lines) == 1, proc.stderr
    return lines[0]


#: ``python -m tickwork.cli``, printing first when it has imported what a worker
#: imports (``time.monotonic``: one clock for every process of the machine).
_CLI_SAYING_WHEN_IMPORTED = """
import time
from tickwork.cli.main import main
import tickwork.cli.worker, tickwork.engine.runtime, tickwork.store.sqlite
print(f"imported at {time.monotonic()!r}", flush=True)
main()
"""


def _run_once_imported(
    args: list[str], prefix: tuple[str, ...] = (), **popen: Any
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """As ``_run``, timed from the end of the command's imports to its exit: on a
    loaded machine, starting the interpreter and importing tickwork take a second more
    or less from one run to the next, and are not what is timed."""
    popen.setdefault("cwd", ROOT)
    popen.setdefault("env", cli_env())
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", _CLI_SAYING_WHEN_IMPORTED, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        **popen,
    )
    ended = time.monotonic()
    said = proc.stdout.partition("\n")[0]
    assert said.startswith("imported at "), proc
    return ended - float(said.removeprefix("imported at ")), proc


def _startup(prefix: tuple[str, ...] = ()) -> float:
    """How long a worker takes on this machine now to start and fail at once (on a
    file in a directory that does not exist), once imported."""
    took, proc = _run_once_imported(["--db", "sqlite:////nonexistent-dir/x.db", "worker"], prefix)
    assert "unable to open" in proc.stderr, proc.stderr
    return took


def _fails_at_once(
    run: Callable[[], tuple[float, subprocess.CompletedProcess[str]]],
    prefix: tuple[str, ...] = (),
    tries: int = 3,
) -> subprocess.CompletedProcess[str]:
    """The command ``run`` runs (``_run_once_imported``), which must fail as soon as a
    worker fails to start (``_startup``), give or take a second; returns its process.
    Either may be held up alone on a loaded machine, so the pair is tried again, up to
    ``tries`` times: a wait on the command's way out is in every try."""
    times: list[tuple[float, float]] = []
    for _ in range(tries):
        baseline = _startup(prefix)
        took, proc = run()
        if took < baseline + 1.0:
            return proc
        times.append((took, baseline))
    raise AssertionError(f"slower than a failed start each time (took, start): {times}")


#: root writes any file whatever its mode: a command that must meet a read-only file
#: runs as root without the capabilities that override file modes (root stays root, so
#: its interpreter and the checkout stay readable wherever they are installed).
AS_ROOT_BOUND_BY_MODES = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may write in, under a path anyone may reach."""
    path = Path(tempfile.mkdtemp(prefix="tickwork-ro-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_worker_on_a_read_only_file_fails_at_once(open_dir: Path) -> None:
    """Before: 30 s of silence, then the error. The directory stays writable: only the
    file is read-only."""
    db = open_dir / "ro.db"
    url = f"sqlite:///{db}"
    _run(["--db", url, "db", "upgrade"])
    db.chmod(0o444)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no read-only file for root")
        prefix = AS_ROOT_BOUND_BY_MODES

    def worker() -> tuple[float, subprocess.CompletedProcess[str]]:
        for suffix in ("-wal", "-shm"):  # the directory stays writable: none, each try
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return _run_once_imported(["--db", url, "worker"], prefix)

    line = _one_error_line(_fails_at_once(worker, prefix))
    assert "readonly database" in line, line


def _bound_by_modes() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: no unwritable directory for root")
    return AS_ROOT_BOUND_BY_MODES


@pytest.mark.parametrize("command", [["db", "upgrade"], ["worker"]])
@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("missing/x.db", "the directory {dir}/missing does not exist: create it"),
        ("closed/x.db", "the directory {dir}/closed is not writable by this user"),
        ("closed", "{dir}/closed is a directory: give the path of a file in it"),
    ],
)
def test_a_database_that_cannot_be_opened_says_why(
    open_dir: Path, command: list[str], where: str, expected: str
) -> None:
    """Before: SQLite's "unable to open database file", naming no cause."""
    (open_dir / "closed").mkdir(mode=0o555)
    prefix = _bound_by_modes() if where.startswith("closed/") else ()
    _took, proc = _run(["--db", f"sqlite:///{open_dir}/{where}", *command], prefix)
    line = _one_error_line(proc)
    assert expected.format(dir=open_dir) in line, line


def _disk_full() -> None:
    # The file size limit the kernel enforces: a write past it fails with EFBIG, as a
    # full disk's does with ENOSPC; SQLite reports either as an I/O error.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_worker_on_a_full_disk_fails_at_once(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    url = f"sqlite:///{db}"
    _run(["--db", url, "db", "upgrade"])

    def worker() -> tuple[float, subprocess.CompletedProcess[str]]:
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return _run_once_imported(["--db", url, "worker"], preexec_fn=_disk_full)

    line = _one_error_line(_fails_at_once(worker))
    assert "disk I/O error" in line or "full" in line, line


DEEP = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create", "--task", "cli:echo", "--schedule", "manual", "--data", DEEP], "nested"),
        (["create", "--task", "cli:echo", "--schedule", "manual", "--data", '{"a": "\udcff"}'],
         "not valid UTF-8"),
        (["create", "--task", "cli:echo", "--schedule", "manual", "--name", "a\udcffb"],
         "not valid UTF-8"),
        (["create", "--task", "cli:echo", "--schedule", "manual", "--tag", "a\udcffb"],
         "not valid UTF-8"),
        (["show", "--id", "a\udcffb"], "not valid UTF-8"),
        (["history", "--task", "a\udcffb"], "not valid UTF-8"),
        (["create", "--task", "cli:echo", "--schedule", "manual", "--id", "x" * 10_000],
         "10000 characters"),
    ],
)  # fmt: skip
def test_bad_arguments_give_one_line(cli: Cli, args: list[str], expected: str) -> None:
    argv = [a.encode("utf-8", "surrogateescape") for a in ["--db", cli.db_url, *args]]
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"tickwork.cli", *argv],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    text = subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode(errors="replace")
    )
    # A create refused for its id is also refused for its task, unknown on this empty
    # database: a line each (the id's first); every other case has one line.
    line, *others = _error_lines(text)
    assert expected in line, line
    assert len(line) < 400, line
    assert others == (["error: task: unknown task 'cli:echo'; known tasks: none (a task "
        "becomes known when a node that imports it starts: tickwork worker --import MODULE)"]
        if "--id" in args and "create" in args else []), others  # fmt: skip


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        ("", "--db (or TICKWORK_DB) is empty"),
        ("postgresql://nobody@127.0.0.1:1/none", "Connection refused"),
    ],
)
def test_bad_db_urls_give_one_line(tmp_path: Path, db: str, expected: str) -> None:
    _took, proc = _run(["--db", db, "status"], cwd=tmp_path)
    line = _one_error_line(proc)
    assert expected in line, line
    assert "connect_timeout" not in line
    assert not (tmp_path / "tickwork.db").exists()


def test_a_postgres_url_without_a_host_is_read_as_libpq_does() -> None:
    """``postgresql://`` and ``postgresql:///db`` mean the local socket and libpq's
    defaults; the options tickwork adds are not read as a host name."""
    from tickwork.store.url import PostgresURL, parse_url

    for url in ("postgresql://", "postgresql:///tickwork", "postgresql:///tickwork?pool_max=3"):
        parsed = parse_url(url)
        assert isinstance(parsed, PostgresURL)
        assert parsed.conninfo.startswith("postgresql://")
        assert "connect_timeout=5" in parsed.conninfo


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.add_schedule("noop", "manual", data={"a": [[[[]]]] * 1} | {"d": _deep()}),
        lambda s: s.add_schedule("noop", "manual", name="a\udcffb"),
        lambda s: s.add_schedule("noop", "manual", tags=["a\udcffb"]),
        lambda s: s.get_schedule("a\udcffb"),
        lambda s: s.list_runs(task="a\udcffb"),
        lambda s: s.add_schedule("noop", "manual", id="x" * 10_000),
    ],
)
def test_bad_input_from_python_is_a_validation_error(sqlite_url: str, call: Any) -> None:
    async def go() -> None:
        async with Scheduler(sqlite_url, engine=False) as s:
            with pytest.raises(ValidationError) as caught:
                await call(s)
            assert len(str(caught.value)) < 400

    asyncio.run(go())


def _deep() -> Any:
    value: Any = []
    for _ in range(1000):
        value = [value]
    return value


@pytest.mark.parametrize("url", ["", "postgresql://nobody@127.0.0.1:1/none"])
def test_bad_db_urls_from_python(url: str) -> None:
    async def go() -> None:
        with pytest.raises(TickworkError) as caught:
            async with Scheduler(url, engine=False):
                pass
        assert "\n" not in str(caught.value)

    asyncio.run(go())


def test_cleanup_reaching_before_the_calendar(cli: Cli) -> None:
    # Before: a traceback (OverflowError) for an age past year 1.
    proc = cli("cleanup", "--older-than-days", "1e300", expect=2)
    assert "Traceback" not in proc.stderr and "'--older-than-days'" in proc.stderr
    assert cli.json("cleanup", "--older-than-days", "365000")["deleted"] == 0


def test_a_queue_name_with_brackets_is_shown_as_it_is(wcli: Cli) -> None:
    # Before: the table's title took the name for Rich markup: '[/x]' failed with a
    # traceback (MarkupError), '[bold]' vanished.
    name = "[/x] [bold]q"
    wcli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "brackets",
         "--result-queue", name)  # fmt: skip
    wcli("run", "--id", "brackets", "--wait")
    shown = wcli("queue", "read", name)
    assert shown.stdout.splitlines()[0] == f"queue {name}", shown.stdout


def test_a_retention_past_the_calendar_is_refused_before_the_node_starts(cli: Cli) -> None:
    # Before: the node started, then failed with a traceback (OverflowError) at its
    # first cleanup.
    assert cli.error("worker", "--retention-days", "1e300") == (
        "error: retention_days = '1e300' (from --retention-days): must be <= 36525"
    )


def test_a_retention_the_node_refuses_is_refused_as_a_setting(cli: Cli) -> None:
    # Before: the setting took up to 365000 days, which the node then refused with an
    # error naming neither the flag nor the variable it came from.
    assert cli.error("worker", "--retention-days", "100000") == (
        "error: retention_days = '100000' (from --retention-days): must be <= 36525"
    )


def test_a_token_whose_secret_cannot_be_printed_is_revoked(cli: Cli) -> None:
    # Before: a traceback, and a token left in force whose secret no one had.
    for json_flag in ([], ["--json"]):
        with open("/dev/full", "w") as full:
            proc = subprocess.run(
                [sys.executable, "-m", "tickwork.cli", "--db", cli.db_url, *json_flag,
                 "token", "create", "--user", "lost"],
                cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL, stdout=full,
                stderr=subprocess.PIPE, text=True, timeout=30,
            )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "cannot print the token's secret" in proc.stderr and "was revoked" in proc.stderr
    assert cli.json("token", "list") == []
    assert [t["user"] for t in cli.json("token", "list", "--revoked")] == ["lost", "lost"]


def test_consumed_messages_that_cannot_be_printed_go_to_stderr(wcli: Cli) -> None:
    # Before: a traceback, and the messages, already removed from the queue, lost.
    wcli("create", "--task", "cli:echo", "--schedule", "manual", "--id", "to-full",
         "--result-queue", "to-full", "--data", '{"keep": "me"}')  # fmt: skip
    wcli("run", "--id", "to-full", "--wait")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "tickwork.cli", "--db", wcli.db_url, "queue", "read",
             "to-full", "--consume"],
            cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL, stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot print the 1 consumed message(s)" in proc.stderr
    assert '"keep": "me"' in proc.stderr  # the result echoes the data
    assert wcli.json("queue", "read", "to-full") == []


@pytest.mark.parametrize("args", [["list"], ["--json", "list"], ["validate", "5m"]])
def test_output_on_a_full_disk_is_one_error_line(cli: Cli, args: list[str]) -> None:
    # Before: a traceback ending in OSError: [Errno 28] No space left on device.
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "tickwork.cli", "--db", cli.db_url, *args],
            cwd=ROOT, env=cli_env(), stdin=subprocess.DEVNULL, stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write the output (No space left on device)\n"
