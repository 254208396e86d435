"""How commands print: Rich tables for people, JSON on stdout for scripts, errors on stderr.

Tables and messages go to stdout; errors and warnings to stderr, so a script can pipe
``--json`` output while a person still sees what went wrong.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tickwork.limits import visible


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _width() -> int | None:
    """Full width in a terminal; wide when piped, so ids are never folded mid-line."""
    if os.environ.get("COLUMNS"):
        return None
    return None if sys.stdout.isatty() else 200


def _plain(title: str | None) -> str | None:
    """A title as it reads: it may hold a user's words (a queue's name), whose brackets
    Rich would take for markup (``[/x]`` even fails)."""
    return None if title is None else escape(visible(title))


class OutputFailed(OSError):
    """Stdout refused what a command printed (a full disk...); ``main`` reports it in
    one line. A closed pipe stays a ``BrokenPipeError``, which Click handles."""


@contextmanager
def _stdout() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputFailed(exc.errno, exc.strerror) from exc


@dataclass
class Output:
    json: bool = False

    @property
    def console(self) -> Console:
        return Console(highlight=False, soft_wrap=True, width=_width())

    def emit_json(self, value: Any) -> None:
        with _stdout():
            sys.stdout.write(json.dumps(value, default=_default, indent=2) + "\n")
            sys.stdout.flush()

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
    ) -> None:
        table = Table(title=_plain(title), title_justify="left")
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else escape(visible(str(v))) for v in row))
        with _stdout():
            self.console.print(table)

    def fields(self, pairs: Sequence[tuple[str, Any]], title: str | None = None) -> None:
        """A two-column table of ``name: value`` for one record."""
        table = Table(title=_plain(title), title_justify="left", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for name, value in pairs:
            table.add_row(name, "" if value is None else escape(visible(str(value))))
        with _stdout():
            self.console.print(table)

    def line(self, text: str) -> None:
        """A plain line for people (Rich markup is not interpreted)."""
        with _stdout():
            self.console.print(visible(text), markup=False)
            sys.stdout.flush()

    def warn(self, message: str) -> None:
        """``warning: message`` on stderr; the command goes on."""
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[yellow]warning:[/yellow] {escape(visible(message))}"
        )

    def refuse_blank(self, *options: tuple[str, str | None]) -> None:
        """Fail as a usage error naming the first of ``options`` (flag, value) given
        blank: a filter left empty (an unset variable in a script) would match nothing."""
        for flag, value in options:
            if value is not None and not value.strip():
                self.fail(f"{flag} is empty: give a value, or leave {flag} out", code=2)

    def fail(self, message: str, code: int = 1, *, more: Sequence[str] = ()) -> NoReturn:
        """Print ``error: message`` on stderr (and a line ``error: ...`` for each of
        ``more``) and exit with ``code``."""
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        for line in (message, *more):
            console.print(f"[red]error:[/red] {escape(visible(line))}")
        raise typer.Exit(code)


# -- formatting helpers for tables ---------------------------------------------------------


def when(value: datetime | None, zone: str | tzinfo | None = None) -> str:
    """A datetime for people: ``2026-03-01 09:00:00+01:00`` in ``zone`` (default: local)."""
    if value is None:
        return ""
    tz: tzinfo | None
    if isinstance(zone, str):
        try:
            tz = ZoneInfo(zone)
        except (ValueError, KeyError, OSError):
            tz = None
    else:
        tz = zone
    local = value.astimezone(tz)
    return local.isoformat(sep=" ", timespec="seconds")


def seconds(value: float | None) -> str:
    """A duration for people: ``0.012 s``, ``3.5 s``, ``2m 05s``, ``1h 02m``, ``2d 03h``."""
    if value is None:
        return ""
    if value < 10:
        return f"{value:.3f} s" if value < 1 else f"{value:.1f} s"
    total = round(value)
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s" if total >= 60 else f"{total} s"
    if total < 86400:
        return f"{total // 3600}h {total % 3600 // 60:02d}m"
    return f"{total // 86400}d {total % 86400 // 3600:02d}h"


def relative(target: datetime | None, now: datetime) -> str:
    """``in 5m 03s`` / ``12 s ago``."""
    if target is None:
        return ""
    delta = (target - now).total_seconds()
    text = seconds(abs(delta)) if abs(delta) >= 1 else "now"
    if text == "now":
        return text
    return f"in {text}" if delta > 0 else f"{text} ago"


def short(text: str | None, limit: int = 60) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"
