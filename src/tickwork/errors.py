"""The error hierarchy of tickwork.

Every error tickwork raises on purpose derives from ``TickworkError``::

    TickworkError
    ├── ScheduleError (also ValueError)   an expression, zone or schedule field is invalid
    ├── ValidationError (also ValueError) a field of a schedule, run or request is invalid
    │   └── UnknownTaskError              the task name is neither registered nor published
    ├── NotFoundError (also LookupError)  no schedule / run / token with that id
    ├── ConflictError                     the id is taken, or the state forbids the change
    │   └── PreconditionFailedError       the record changed since the caller read it
    ├── PermissionDeniedError             the caller may read but not do this
    ├── StoreError                        the database failed or cannot be reached
    │   └── StoreUnavailableError         the database cannot be used right now (locked, disk full)
    └── RunTimeoutError (also TimeoutError) waiting for a run took longer than asked

Drivers' exceptions never cross the store boundary: the store translates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

#: Characters of a user's input quoted in an error message (``echo``).
MAX_ECHO_CHARS: Final = 80


def echo(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with a marker:
    an error quotes what it refuses, never all of a huge value."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:limit]}… ({size} characters)"


class FieldProblem(NamedTuple):
    """One field a request got wrong, and why: an entry of ``problems``."""

    field: str | None
    message: str


class TickworkError(Exception):
    """Base of every error raised by tickwork on purpose."""


class ScheduleError(TickworkError, ValueError):
    """A schedule expression or time zone is invalid; the message names the bad part.
    ``field`` names the field at fault: ``schedule`` (the expression) or ``timezone``.
    ``problems``: as for ``ValidationError``."""

    def __init__(
        self,
        message: str,
        *,
        field: str = "schedule",
        problems: Iterable[FieldProblem] = (),
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problems = _with_first(FieldProblem(field, message), problems)


class ValidationError(TickworkError, ValueError):
    """A field is invalid. ``field`` names it so edges (CLI, API) can point at it.

    ``problems`` names every field found wrong with the same request, this one first:
    a schedule refused by ``add_schedule`` or ``update_schedule`` lists all its bad
    fields at once, so they can be fixed in one go (one entry when only one is wrong)."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: Iterable[FieldProblem] = (),
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problems = _with_first(FieldProblem(field, message), problems)


def _with_first(first: FieldProblem, others: Iterable[FieldProblem]) -> tuple[FieldProblem, ...]:
    """``first`` then ``others``, one problem per field (the first one named wins)."""
    found = {first.field: first}
    for problem in others:
        found.setdefault(problem.field, problem)
    return tuple(found.values())


def add_problems(error: ValidationError | ScheduleError, others: Iterable[FieldProblem]) -> None:
    """Add to ``error.problems`` those of ``others`` about a field it does not name yet."""
    error.problems = _with_first(error.problems[0], (*error.problems[1:], *others))


class UnknownTaskError(ValidationError):
    """The task name is not known to this process nor published by any node."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(set(known))
        listing = ", ".join(self.known) if self.known else "none"
        # The name quoted cut, as any input an error quotes: a task name is at most 200
        # characters, but a schedule may name a longer one.
        super().__init__(f"unknown task {echo(name)}; known tasks: {listing}", field="task")


class NotFoundError(TickworkError, LookupError):
    """No record with that id."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")

    def __str__(self) -> str:  # LookupError would quote the args tuple otherwise
        return f"{self.kind} {self.ident!r} not found"


class ConflictError(TickworkError):
    """The change conflicts with the stored state (duplicate id, finished run...)."""


class PreconditionFailedError(ConflictError):
    """The record's version is not the one the caller expected (a lost update avoided)."""


class PermissionDeniedError(TickworkError):
    """The caller is known but may not do this (a read-only token writing, a user
    asking for an admin's action)."""


class StoreError(TickworkError):
    """The database failed; the message says what was being done."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached or written right now (retry later). ``reason``,
    when known, says why in a few words that name no path nor host (``the disk is
    full``), for answers that must not show the database's address."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class RunTimeoutError(TickworkError, TimeoutError):
    """Waiting for a run to finish took longer than the caller allowed."""
