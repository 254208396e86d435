"""The ``tickwork`` command: global options and the command groups.

Commands live in modules named for what they manage; each registers itself on ``app``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import typer

from tickwork.cli.output import Output

DEFAULT_DB = "sqlite:///tickwork.db"

app = typer.Typer(
    name="tickwork",
    help="tickwork: a durable job scheduler. Schedules, runs and their history live in a database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class Globals:
    """Options given before the command, shared by every command."""

    db: str
    url: str | None
    token: str | None
    out: Output


@app.callback()
def _globals(
    ctx: typer.Context,
    db: str = typer.Option(
        None, "--db", envvar="TICKWORK_DB", help="Database URL [default: sqlite:///tickwork.db]."
    ),
    url: str = typer.Option(None, "--url", help="A tickwork server's URL (instead of --db)."),
    token: str = typer.Option(None, "--token", envvar="TICKWORK_TOKEN", help="API token."),
    json_output: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    ctx.obj = Globals(db=db or DEFAULT_DB, url=url, token=token, out=Output(json=json_output))


def _register_commands() -> None:
    # Imported for their side effect: each module adds its commands to ``app``.
    from tickwork.cli import expression_commands  # noqa: F401


def main() -> None:
    """Console-script entry point."""
    _register_commands()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
