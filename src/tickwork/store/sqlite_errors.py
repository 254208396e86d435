"""SQLite's errors as tickwork's: a lock held or a file out of reach is
``StoreUnavailableError`` (retried), a broken unique key ``ConflictError``, the rest
``StoreError``, each naming the file."""

from __future__ import annotations

import os
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


def open_failure(path: str, exc: sqlite3.Error) -> str:
    """Why the SQLite file at ``path`` could not be opened: SQLite's own words ("unable
    to open database file") name neither the cause nor the fix, so the file system is
    asked which of the usual ones it is."""
    where = os.path.abspath(path)
    folder = os.path.dirname(where)
    text = f"cannot open SQLite database {path!r}: {exc}"
    if os.path.isdir(where):
        return f"{text} ({where} is a directory: give the path of a file in it)"
    if not os.path.isdir(folder):
        return f"{text} (the directory {folder} does not exist: create it, or use another path)"
    if not os.access(folder, os.W_OK | os.X_OK):
        # A new file is made there, and SQLite keeps its -wal and -shm files beside it.
        return (
            f"{text} (the directory {folder} is not writable by this user: SQLite "
            "writes the database and its -wal and -shm files there)"
        )
    if os.path.exists(where) and not os.access(where, os.R_OK | os.W_OK):
        return f"{text} (the file {where} is not readable and writable by this user)"
    return text
