"""SQLite's errors as tickwork's: a lock held or a file out of reach is
``StoreUnavailableError`` (retried), a broken unique key ``ConflictError``, the rest
``StoreError``, each naming the file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from tickwork.errors import ConflictError, StoreError, StoreUnavailableError
from tickwork.limits import not_utf8


def busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because a lock is held (SQLITE_BUSY or SQLITE_LOCKED)."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def translated(exc: sqlite3.Error, path: str) -> Exception:
    """The tickwork error for a ``sqlite3`` error."""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(text)
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in text for word in ("locked", "busy", "unable to open", "disk I/O")
    ):
        return StoreUnavailableError(f"SQLite database {path!r}: {text}")
    return StoreError(f"SQLite database {path!r}: {text}")


@contextmanager
def translate(path: str) -> Iterator[None]:
    """Turn ``sqlite3`` errors into tickwork's."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translated(exc, path) from exc
    except UnicodeEncodeError as exc:
        raise not_utf8(exc) from None
