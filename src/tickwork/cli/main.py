"""The ``tickwork`` command: global options and the command groups.

Commands live in modules named for what they manage; each registers itself on ``app``:
``schedule_commands`` (create, update, delete, show, list, pause, resume),
``run_commands`` (run, history), ``node_commands`` (status, stats),
``db_commands`` (db upgrade, cleanup), ``worker`` and ``expression_commands``
(validate, next).
"""

from __future__ import annotations

import os

import typer

from tickwork.cli.client import Globals
from tickwork.cli.output import Output

DEFAULT_DB = "sqlite:///tickwork.db"

app = typer.Typer(
    name="tickwork",
    help="tickwork: a durable job scheduler. Schedules, runs and their history live in a database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

__all__ = ["DEFAULT_DB", "Globals", "app", "main"]


@app.callback()
def _globals(
    ctx: typer.Context,
    db: str = typer.Option(
        None, "--db", envvar="TICKWORK_DB", help="Database URL (default: sqlite:///tickwork.db)."
    ),
    url: str = typer.Option(
        None, "--url", help="A tickwork server's URL (not supported yet: use --db)."
    ),
    token: str = typer.Option(
        None, "--token", envvar="TICKWORK_TOKEN", help="API token for --url (not supported yet)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    # A token from the environment is for a future REST client; only one given on the
    # command line asks for it now.
    source = ctx.get_parameter_source("token")
    given = token if source is not None and source.name == "COMMANDLINE" else None
    ctx.obj = Globals(db=db or DEFAULT_DB, url=url, token=given, out=Output(json=json_output))


def _register_commands() -> None:
    # Imported for their side effect: each module adds its commands to ``app``.
    # The order here is the order of ``tickwork --help``.
    from tickwork.cli import worker  # noqa: F401  # isort: skip
    from tickwork.cli import schedule_commands  # noqa: F401  # isort: skip
    from tickwork.cli import run_commands  # noqa: F401  # isort: skip
    from tickwork.cli import expression_commands  # noqa: F401  # isort: skip
    from tickwork.cli import node_commands  # noqa: F401  # isort: skip
    from tickwork.cli import db_commands  # noqa: F401  # isort: skip


def main() -> None:
    """Console-script entry point."""
    _register_commands()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
