"""One command, one client: open ``Scheduler(db, engine=False)`` (or, with ``--url``, a
client of a tickwork server), call it, close it.

Every command except ``worker`` goes through ``with_client``: it never executes tasks,
and turns tickwork's own errors into ``error: <message>`` on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import typer

from tickwork.cli.output import Output
from tickwork.engine.audit import acting_as, default_actor
from tickwork.errors import ScheduleError, TickworkError, UnknownTaskError, ValidationError
from tickwork.limits import MAX_JSON_DEPTH, check_json_value
from tickwork.store.url import SQLiteURL, mask_password, parse_url

if TYPE_CHECKING:
    from tickwork.engine.scheduler import Scheduler

T = TypeVar("T")


@dataclass
class Globals:
    """Options given before the command, shared by every command."""

    db: str
    url: str | None
    token: str | None
    out: Output
    #: The database URL as given (``--db`` or ``TICKWORK_DB``); None when ``db`` is the
    #: default, which a settings file may replace for ``worker`` and ``serve``.
    db_given: str | None = None

    def require_db(self) -> None:
        """For commands that work on the database itself (``worker``, ``serve``)."""
        if self.url is not None:
            self.out.fail(
                "--url (or TICKWORK_URL: a tickwork server) is for commands that go through "
                "its API: this one works on the database itself, give --db URL (or TICKWORK_DB)"
            )
        if self.token is not None:
            self.out.fail("--token is for a tickwork server: give its --url too")


def globals_of(ctx: typer.Context) -> Globals:
    """The ``Globals`` set by the ``tickwork`` callback (``--db``, ``--json``...)."""
    g = ctx.find_root().obj
    if not isinstance(g, Globals):  # pragma: no cover - the callback always runs first
        raise RuntimeError("tickwork globals are missing")
    return g


def missing_database(url: str) -> str | None:
    """Why ``url`` cannot be read: a SQLite file that does not exist; else None.

    Opening a SQLite file creates it: a command that only reads or changes what exists
    would otherwise leave an empty database behind (often in the wrong directory).
    """
    try:
        parsed = parse_url(url)
    except ValidationError:
        return None  # opening it reports the bad URL
    if not isinstance(parsed, SQLiteURL) or os.path.exists(parsed.path):
        return None
    return (
        f"database {os.path.abspath(parsed.path)} does not exist ({mask_password(url)}); "
        "give --db (or TICKWORK_DB), or create it: tickwork db upgrade, tickwork worker "
        "or tickwork create"
    )


def with_client(
    ctx: typer.Context,
    action: Callable[[Scheduler], Awaitable[T]],
    *,
    creates: bool = False,
    reason: str | None = None,
) -> T:
    """Run ``action`` with a client scheduler on the ``--db`` database, or with the
    ``--url`` server's API (``tickwork.cli.remote``), which answers the same calls.

    Unless the command ``creates`` the database (``create``, ``db upgrade``), a SQLite
    file that does not exist is an error naming it. ``reason`` goes to the audit log
    with the changes made (through a server, with those whose route takes one).
    """
    g = globals_of(ctx)
    remote = g.url is not None
    if not remote:
        g.require_db()
        if not creates:
            missing = missing_database(g.db)
            if missing is not None:
                g.out.fail(missing)

    async def go() -> T:
        if remote:
            from tickwork.cli.remote import RemoteScheduler

            assert g.url is not None
            # The same calls, answered over HTTP with the same records (the server
            # audits them as the token's user, with the reason the client sends).
            with acting_as(default_actor("cli"), reason):
                async with RemoteScheduler(g.url, g.token) as server:
                    return await action(cast("Scheduler", server))
        from tickwork.engine.scheduler import Scheduler

        # Changes made from the CLI are audited as "cli:<os user>".
        with acting_as(default_actor("cli"), reason):
            async with Scheduler(g.db, engine=False) as scheduler:
                return await action(scheduler)

    try:
        return asyncio.run(go())
    except (ValidationError, ScheduleError) as exc:
        first, *more = refusal_lines(exc)
        g.out.fail(first, more=more)
    except TickworkError as exc:
        g.out.fail(str(exc))
    except KeyboardInterrupt:
        g.out.fail("interrupted", code=130)


def refusal_lines(exc: ValidationError | ScheduleError) -> list[str]:
    """What to print of a refusal: its message, as always, when one field is at
    fault; else one line per field, each naming it (``timezone: unknown time zone``).
    An unknown task on a database that knows none says how a task becomes known."""
    hint = (
        " (a task becomes known when a node that imports it starts: "
        "tickwork worker --import MODULE)"
    )
    if len(exc.problems) < 2:
        unknown = isinstance(exc, UnknownTaskError) and not exc.known
        return [f"{exc}{hint if unknown else ''}"]
    lines = []
    for field, message in exc.problems:
        line = message if field is None or message.startswith(field) else f"{field}: {message}"
        none_known = field == "task" and message.endswith("known tasks: none")
        lines.append(line + (hint if none_known else ""))
    return lines


def parse_data(out: Output, text: str | None, option: str = "--data") -> dict[str, Any] | None:
    """``--data`` as a JSON object, or a clear error naming the option."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        out.fail(f"{option} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        out.fail(f"{option} is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    if not isinstance(value, dict):
        out.fail(f'{option} must be a JSON object such as \'{{"region": "eu"}}\'')
    try:
        # Here, not only where it is stored: a lone surrogate ("\ud800") cannot even be
        # sent to a server, and NUL, size and depth are named alike both ways.
        check_json_value(value, "data")
    except ValidationError as exc:
        out.fail(str(exc))
    return value
