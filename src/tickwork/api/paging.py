"""Cursors of the API's lists: where the last page ended, by a key that never changes.

A cursor is the sort key of the last item served (a schedule's id; a run's
``(scheduled_for, id)``; an audit entry's or a queue message's id), base64url-encoded
JSON. The next page starts strictly after that key, so items added meanwhile never make
an item repeat or be skipped, and a deleted item does not break the cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Query

from tickwork.errors import ValidationError

#: A list's filter by a name: one left blank (``?task=``) would match nothing, so it is
#: refused naming the parameter rather than answered with an empty list.
Filter = Annotated[str | None, Query(min_length=1)]

_T = TypeVar("_T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Audit entry ids are 64-bit integers: a larger key is no entry's.
_MAX_ID = 2**63 - 1


def encode(kind: str, key: Any) -> str:
    raw = json.dumps([kind, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str) -> Any:
    """The key in a cursor made by ``encode(kind, ...)``; ``ValidationError`` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        found = None  # RecursionError: JSON nested deeper than the parser goes
    if not isinstance(found, list) or len(found) != 2 or found[0] != kind:
        raise _not_ours()
    return found[1]


def _not_ours() -> ValidationError:
    return ValidationError("cursor is not one this list gave out", field="cursor")


def _id_key(key: Any) -> str:
    """An id from a cursor: text every database can compare (no NUL, no lone surrogate,
    which no id has), so a tampered cursor is refused alike on SQLite and PostgreSQL."""
    if not isinstance(key, str) or "\x00" in key:
        raise _not_ours()
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_ours() from None
    return key


def schedule_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return _id_key(decode("s", cursor))


def name_page(
    kind: str, items: Sequence[_T], name: Callable[[_T], str], cursor: str | None, limit: int
) -> tuple[list[_T], str | None]:
    """A page of a short list read whole (tasks, nodes), ordered by ``name``: the
    ``limit`` items after the cursor's name, and the cursor of the next page."""
    after = None if cursor is None else _id_key(decode(kind, cursor))
    ordered = sorted(items, key=name)
    rest = [i for i in ordered if after is None or name(i) > after]
    page = rest[:limit]
    more = len(rest) > limit
    return page, encode(kind, name(page[-1])) if more and page else None


def run_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    key = decode("r", cursor)
    try:
        micros, run_id = key
        when = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(micros))
    except (TypeError, ValueError, OverflowError):
        raise _not_ours() from None
    return when, _id_key(run_id)


def run_key(scheduled_for: datetime, run_id: str) -> str:
    delta = scheduled_for - datetime.fromtimestamp(0, UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return encode("r", [micros, run_id])


def audit_cursor(cursor: str | None) -> int | None:
    return _int_cursor("a", cursor)


def queue_cursor(cursor: str | None) -> int | None:
    return _int_cursor("q", cursor)


def _int_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    key = decode(kind, cursor)
    if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key <= _MAX_ID:
        raise _not_ours()
    return key
