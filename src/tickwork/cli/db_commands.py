"""The database itself: ``db upgrade`` (migrations) and ``cleanup`` (old runs)."""

from __future__ import annotations

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.main import app
from tickwork.engine.scheduler import Scheduler
from tickwork.store.url import mask_password

db_app = typer.Typer(
    name="db",
    help="The database: schema migrations.",
    no_args_is_help=True,
)
app.add_typer(db_app)


@db_app.command(
    "upgrade",
    help="Apply pending schema migrations (nodes also apply them when they start).",
)
def upgrade(ctx: typer.Context) -> None:
    g = globals_of(ctx)
    out = g.out

    async def action(scheduler: Scheduler) -> list[int]:
        return await scheduler.upgrade()

    applied = with_client(ctx, action, creates=True)
    if out.json:
        out.emit_json({"db": mask_password(g.db), "applied": applied})
        return
    if applied:
        out.line(f"applied migration(s) {', '.join(map(str, applied))} to {mask_password(g.db)}")
    else:
        out.line(f"{mask_password(g.db)} is up to date")


#: The oldest ``cleanup`` may reach back (a thousand years): further would be before
#: the calendar's first day.
MAX_DAYS = 365_000


@app.command(
    "cleanup",
    help="Delete finished runs (with their attempts and logs) older than N days, and "
    "events, audit entries and idempotency keys as old; nodes also do this every hour.",
)
def cleanup(
    ctx: typer.Context,
    older_than_days: float = typer.Option(
        30,
        "--older-than-days",
        min=0,
        max=MAX_DAYS,
        metavar="N",
        help="Age of the runs to delete.",
    ),
) -> None:
    out = globals_of(ctx).out

    async def action(scheduler: Scheduler) -> int:
        return await scheduler.cleanup(older_than_days)

    deleted = with_client(ctx, action)
    if out.json:
        out.emit_json({"deleted": deleted, "older_than_days": older_than_days})
        return
    out.line(f"deleted {deleted} run(s) finished more than {older_than_days:g} day(s) ago")
