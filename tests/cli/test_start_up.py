"""What a command loads: ``tickwork stats`` and ``tickwork status`` import the client
and the store, not the engine that executes tasks, the REST API, the dashboard, the
server or the worker commands; and ``tickwork --help`` still lists every command (each
loaded for it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tickwork.cli.main import COMMAND_MODULES, command_name

from .conftest import ROOT, Cli, cli_env

#: Modules a reading command must not load: the engine's, the server's and the worker's.
NOT_FOR_READING = (
    "tickwork.engine.runtime",
    "tickwork.engine.core",
    "tickwork.engine.firing",
    "tickwork.engine.executors",
    "tickwork.engine.task_process",
    "tickwork.engine.context",
    "tickwork.engine.tracing",
    "opentelemetry",
    "multiprocessing",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "tickwork.api",
    "tickwork.web",
    "tickwork.cli.serve",
    "tickwork.cli.worker",
    "tickwork.cli.remote",
    "tickwork.cli.settings",
)


def modules_loaded_by(tmp_path: Path, *args: str) -> set[str]:
    """The modules in ``sys.modules`` when ``tickwork ARGS`` ends, in a fresh process."""
    out = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['tickwork', *{list(args)!r}]\n"
        "from tickwork.cli.main import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize("command", ["stats", "status"])
def test_a_reading_command_loads_no_server(
    cli: Cli, sqlite_url: str, tmp_path: Path, command: str
) -> None:
    cli("db", "upgrade")
    loaded = modules_loaded_by(tmp_path, "--db", sqlite_url, command)
    assert "tickwork.engine.scheduler" in loaded  # it did read the database
    heavy = sorted(
        m for m in loaded for prefix in NOT_FOR_READING if m == prefix or m.startswith(prefix + ".")
    )
    assert heavy == []
    commands = {m.removeprefix("tickwork.cli.") for m in loaded if m.startswith("tickwork.cli.")}
    assert commands & set(COMMAND_MODULES.values()) == {"node_commands"}


def test_help_lists_every_command(cli: Cli) -> None:
    shown = cli("--help").stdout
    for name in COMMAND_MODULES:
        assert f" {name} " in shown, name


def test_the_command_is_the_first_word_after_the_root_options() -> None:
    assert command_name(["stats"]) == "stats"
    assert command_name(["--db", "sqlite:///x.db", "--json", "stats", "--since", "x"]) == "stats"
    assert command_name(["--db=sqlite:///x.db", "status"]) == "status"
    assert command_name(["--url", "http://h", "--token", "t", "token", "list"]) == "token"
    assert command_name(["--json"]) is None
    assert command_name([]) is None
