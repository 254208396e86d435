"""Who is making a change, for the audit log: set by each door (API, CLI, Python).

The actor and an optional reason travel in a context variable, so the ``Scheduler``
methods keep their signatures and every task or request carries its own. Python code
that sets nothing is ``python:<os user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from tickwork.limits import MAX_DESCRIPTION, check_text

_ACTOR: ContextVar[tuple[str, str | None] | None] = ContextVar("tickwork_actor", default=None)


@cache
def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def default_actor(door: str = "python") -> str:
    return f"{door}:{_os_user()}"


def current_actor() -> tuple[str, str | None]:
    """(actor, reason) of the change being made."""
    found = _ACTOR.get()
    return found if found is not None else (default_actor(), None)


@contextmanager
def acting_as(actor: str, reason: str | None = None) -> Iterator[None]:
    """Changes made inside are recorded as ``actor``'s, with ``reason`` (text every
    database can keep: a reason with a NUL is refused here, naming it)."""
    if reason is not None:
        check_text(reason, "reason", MAX_DESCRIPTION)
    token = _ACTOR.set((actor, reason))
    try:
        yield
    finally:
        _ACTOR.reset(token)
