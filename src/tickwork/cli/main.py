"""The ``tickwork`` command: global options and the command groups.

Commands live in modules named for what they manage; each registers itself on ``app``:
``schedule_commands`` (create, update, delete, show, list, pause, resume),
``run_commands`` (run, history, cancel, backfill), ``queue_commands`` (queue read),
``task_commands`` (tasks), ``node_commands`` (status, stats),
``db_commands`` (db upgrade, cleanup), ``worker`` and ``expression_commands``
(validate, next).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, Final

import typer

from tickwork.cli.client import Globals
from tickwork.cli.output import Output, OutputFailed
from tickwork.limits import MAX_ECHO_CHARS

DEFAULT_DB = "sqlite:///tickwork.db"

app = typer.Typer(
    name="tickwork",
    help="tickwork: a durable job scheduler. Schedules, runs and their history live in a database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

__all__ = ["DEFAULT_DB", "Globals", "app", "main"]


def _print_version(value: bool) -> None:
    if value:
        print(f"tickwork {tickwork_version()}")
        raise typer.Exit()


def tickwork_version() -> str:
    """The installed distribution's version."""
    import importlib.metadata  # only here: reading the metadata costs every command's start

    try:
        return importlib.metadata.version("tickwork")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown (not installed)"


@app.callback()
def _globals(
    ctx: typer.Context,
    db: str = typer.Option(
        None,
        "--db",
        envvar="TICKWORK_DB",
        help="Database URL (default: sqlite:///tickwork.db); not with --url.",
    ),
    url: str = typer.Option(
        None,
        "--url",
        envvar="TICKWORK_URL",
        help="A tickwork server's URL (http://host:8000): commands go through its REST API; "
        "not with --db (a flag beats the other's variable).",
    ),
    token: str = typer.Option(
        None, "--token", envvar="TICKWORK_TOKEN", help="API token for --url."
    ),
    json_output: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        expose_value=False,
        help="Print tickwork's version and exit.",
    ),
) -> None:
    if db is not None and not db.strip():
        Output(json=json_output).fail(
            "--db (or TICKWORK_DB) is empty: give a database URL such as "
            "sqlite:///tickwork.db or postgresql://user@host/dbname"
        )
    server, server_token = _remote(ctx, db, url, token)
    ctx.obj = Globals(
        db=db or _file_db() or DEFAULT_DB,
        url=server,
        token=server_token,
        out=Output(json=json_output),
        db_given=db,
    )


def _file_db() -> str | None:
    """The ``db`` of the settings file (``TICKWORK_CONFIG`` or ``./tickwork.toml``), so
    every command finds the database a node started from that file uses."""
    from tickwork.cli.settings import SettingError, Settings, config_path, read_file

    path = config_path(None, os.environ, Path.cwd())
    if path is None:
        return None
    try:
        data = read_file(path)
        return Settings({}, {}, path, data).database(None, "") or None
    except SettingError as exc:
        Output().fail(str(exc))


def _remote(
    ctx: typer.Context, db: str | None, url: str | None, token: str | None
) -> tuple[str | None, str | None]:
    """The server to use and its token. ``--db`` and ``--url`` name two places to work
    on: both on the command line, or both only in the environment (``TICKWORK_DB`` and
    ``TICKWORK_URL``), is a usage error naming both, since either could be meant; one
    typed beats the other from the environment (a flag beats the environment). Without
    a server, only a ``--token`` typed on the command line is kept (to be refused), so
    a ``TICKWORK_TOKEN`` in the environment does not get in the way of ``--db``."""

    def typed(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    if url is not None and db is not None:
        out = Output()
        if typed("db") and typed("url"):
            out.fail(
                "give --db or --url, not both: --db works on a database directly, --url "
                "through a tickwork server's API",
                code=2,
            )
        if not typed("db") and not typed("url"):
            out.fail(
                "TICKWORK_DB and TICKWORK_URL are both set in the environment: give --db "
                "URL or --url URL to choose, or unset one of them",
                code=2,
            )
        if typed("db"):
            url = None
    if url is None:
        return None, token if typed("token") else None
    return url, token


#: The module that defines each command, in the order of ``tickwork --help``.
COMMAND_MODULES: Final = {
    "serve": "serve",
    "worker": "worker",
    "create": "schedule_commands",
    "update": "schedule_commands",
    "delete": "schedule_commands",
    "show": "schedule_commands",
    "list": "schedule_commands",
    "pause": "schedule_commands",
    "resume": "schedule_commands",
    "run": "run_commands",
    "history": "run_commands",
    "cancel": "run_commands",
    "backfill": "run_commands",
    "queue": "queue_commands",
    "tasks": "task_commands",
    "validate": "expression_commands",
    "next": "expression_commands",
    "status": "node_commands",
    "stats": "node_commands",
    "db": "db_commands",
    "cleanup": "db_commands",
    "token": "token_commands",
    "audit": "token_commands",
}


def _register_commands(command: str | None = None) -> None:
    """Import the module of ``command`` (each module adds its commands to ``app``), or
    of every command when it is None or unknown: ``tickwork stats`` then loads what
    ``stats`` needs, not the server, the worker and the engine."""
    module = COMMAND_MODULES.get(command or "")
    for name in dict.fromkeys(COMMAND_MODULES.values()) if module is None else [module]:
        importlib.import_module(f"tickwork.cli.{name}")


def command_name(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word after the root options, if any."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-"):
            return token
        if token == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        i += 2 if GLOBAL_OPTIONS.get(token) else 1
    return None


#: Root options accepted after the command too, and whether each takes a value.
GLOBAL_OPTIONS: Final = {"--db": True, "--url": True, "--token": True, "--json": False}


def _value_options(command: Any, path: list[str]) -> set[str] | None:
    """The options of the (sub)command named by ``path`` that take a value, or None
    when ``path`` names no command."""
    for name in path:
        commands = getattr(command, "commands", None)
        if not isinstance(commands, dict) or name not in commands:
            return None
        command = commands[name]
    return {
        opt
        for p in getattr(command, "params", [])
        if getattr(p, "param_type_name", "") == "option" and not getattr(p, "is_flag", False)
        for opt in p.opts
    }


def hoist_global_options(argv: list[str], root: Any) -> list[str]:
    """Move global options given after the command before it, where the root group
    reads them: ``tickwork list --json --db URL`` = ``tickwork --json --db URL list``.

    Values of the command's own options are skipped (``--name --json`` names a schedule
    "--json"), and nothing after ``--`` moves.
    """
    front: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # root options before the command
        token = argv[i]
        front.append(token)
        i += 1
        if GLOBAL_OPTIONS.get(token) and i < len(argv):
            front.append(argv[i])
            i += 1
    path: list[str] = []
    rest: list[str] = []
    moved: list[str] = []
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            rest.extend(argv[i - 1 :])
            break
        name = token.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            moved.append(token)
            if "=" not in token and GLOBAL_OPTIONS[name] and i < len(argv):
                moved.append(argv[i])
                i += 1
            continue
        rest.append(token)
        if not token.startswith("-"):
            if _value_options(root, [*path, token]) is not None:
                path.append(token)
            continue
        takes_value = _value_options(root, path) or set()
        if "=" not in token and token in takes_value and i < len(argv):
            rest.append(argv[i])
            i += 1
    return front + moved + rest


def undecodable_argument(args: list[str]) -> str | None:
    """What is wrong with the first argument that was not valid UTF-8 on the command line
    (Python hands such bytes over as lone surrogates), or None."""
    for index, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            raw = arg.encode("utf-8", "surrogateescape")
            shown = raw[:MAX_ECHO_CHARS] + (b"..." if len(raw) > MAX_ECHO_CHARS else b"")
            bad = arg[exc.start : exc.end].encode("utf-8", "surrogateescape")
            return (
                f"argument {index} is not valid UTF-8 text: {shown!r} (bytes {bad!r} at "
                f"character {exc.start}); tickwork reads arguments as UTF-8"
            )
    return None


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    bad = undecodable_argument(sys.argv[1:])
    if bad is not None:
        print(f"error: {bad}", file=sys.stderr)
        raise SystemExit(2)
    _register_commands(command_name(sys.argv[1:]))
    root = typer.main.get_command(app)
    try:
        root(args=hoist_global_options(sys.argv[1:], root), prog_name="tickwork")
    except OutputFailed as exc:
        # Stdout is on a full disk, say: a traceback would say nothing more, and what
        # the command changed is done.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # what stdout still holds is lost
        print(f"error: cannot write the output ({exc.strerror or exc})", file=sys.stderr)
        raise SystemExit(1) from None
