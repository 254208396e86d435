"""``tickwork validate EXPR`` and ``tickwork next EXPR``: schedule expressions, no database.

Both read an expression in a zone and print its fire times; neither opens the database.
``next`` without EXPR lists the stored schedules' fires (``stored_next``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from tickwork.cli.client import globals_of
from tickwork.cli.main import app
from tickwork.cli.output import Output
from tickwork.schedule import ParsedSchedule, ScheduleError, parse_schedule, to_instant

MAX_COUNT = 1000
VALIDATE_COUNT = 5
_US = timedelta(microseconds=1)

_TZ_HELP = "IANA time zone the expression is read in (and naive --after/--start-at)."
_KEY_HELP = "The schedule id hashed values (H) derive from (default: none)."
_START_HELP = "start_at: no fire before it; an interval's anchor (default: now / --after)."


def _parse(
    out: Output, expr: str, tz: str, key: str | None, start_at: str | None, now: datetime
) -> ParsedSchedule:
    try:
        return parse_schedule(expr, tz, start_at=start_at, key=key, now=now)
    except ScheduleError as exc:
        out.fail(str(exc))


def _one_expression(out: Output, command: str, words: list[str] | None) -> str | None:
    """The expression given as one argument; several words are a usage error that says
    to quote it (the shell splits an unquoted cron expression and expands its ``*``)."""
    if not words:
        return None
    if len(words) > 1:
        quoted = " ".join(words).replace("'", "'\\''")
        out.fail(f"EXPR is one argument: quote it, e.g. tickwork {command} '{quoted}'", code=2)
    return words[0]


def _fires(schedule: ParsedSchedule, after: datetime, count: int) -> list[datetime]:
    return list(schedule.fire_times(after, limit=count))


def _print_times(out: Output, times: list[datetime]) -> None:
    for t in times:
        out.line(f"  {t.isoformat()}  {t:%a}")


@app.command(
    "validate",
    help="Check a schedule expression: print its kind, its meaning and its next 5 fire "
    "times, or the error (exit 1).",
)
def validate(
    ctx: typer.Context,
    words: list[str] = typer.Argument(
        ..., metavar="EXPR", help="A schedule expression (quoted: one argument)."
    ),
    tz: str = typer.Option("UTC", "--tz", help=_TZ_HELP),
    key: str | None = typer.Option(None, "--key", help=_KEY_HELP),
    start_at: str | None = typer.Option(None, "--start-at", help=_START_HELP),
) -> None:
    out = globals_of(ctx).out
    expression = _one_expression(out, "validate", words) or ""
    now = datetime.now(UTC)
    schedule = _parse(out, expression, tz, key, start_at, now)
    times = _fires(schedule, now - _US, VALIDATE_COUNT)  # "now" and "5m" fire at once
    description = schedule.describe()
    if out.json:
        out.emit_json(
            {
                "valid": True,
                "kind": schedule.kind,
                "description": description,
                "timezone": schedule.timezone,
                "next": [t.isoformat() for t in times],
            }
        )
        return
    out.line(f"valid {schedule.kind} schedule: {description}")
    if times:
        out.line("next fire times:")
        _print_times(out, times)
    elif schedule.kind == "manual":
        out.line("never fires by itself: runs only when triggered")
    else:
        out.line("no fire time after now")


@app.command(
    "next",
    help="Print the next fire times of an expression (EXPR), or of stored schedules "
    "(no EXPR; --schedule ID for one).",
)
def next_(
    ctx: typer.Context,
    words: list[str] | None = typer.Argument(
        None,
        metavar="[EXPR]",
        help="A schedule expression (quoted: one argument); omit it for stored schedules.",
    ),
    tz: str = typer.Option("UTC", "--tz", help=_TZ_HELP),
    after: str | None = typer.Option(
        None,
        "--after",
        help="Fire times strictly after this ISO-8601 time (default: now); naive = in "
        "--tz, or in the schedule's zone for stored schedules.",
    ),
    count: int = typer.Option(5, "--count", "-n", help="How many fire times."),
    schedule_id: str | None = typer.Option(
        None, "--schedule", help="A stored schedule's id (without EXPR)."
    ),
    key: str | None = typer.Option(None, "--key", help=_KEY_HELP),
    start_at: str | None = typer.Option(None, "--start-at", help=_START_HELP),
) -> None:
    expression = _one_expression(globals_of(ctx).out, "next", words)
    if expression is None:
        from tickwork.cli.stored_next import next_for_stored_schedules

        # A stored schedule has its own zone, key and start: these would be ignored.
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("tz", "key", "start_at")
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        ]
        if given:
            globals_of(ctx).out.fail(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for an expression "
                f"(tickwork next EXPR {given[0]} ...): a stored schedule uses its own",
                code=2,
            )

        next_for_stored_schedules(ctx, schedule_id, count, after)
        return
    out = globals_of(ctx).out
    if schedule_id is not None:
        out.fail("give an expression or --schedule ID, not both", code=2)
    if not 1 <= count <= MAX_COUNT:
        out.fail(f"--count must be between 1 and {MAX_COUNT}, not {count}", code=2)
    try:
        begin = datetime.now(UTC) if after is None else to_instant(after, tz, "--after")
    except ScheduleError as exc:
        out.fail(str(exc))
    schedule = _parse(out, expression, tz, key, start_at, begin)
    # Strictly after --after; without it, from now on: "now" and "5m" fire at once.
    times = _fires(schedule, begin if after is not None else begin - _US, count)
    if out.json:
        out.emit_json([t.isoformat() for t in times])
        return
    if not times:
        out.line("never fires by itself" if schedule.kind == "manual" else "no fire time")
        return
    _print_times(out, times)
