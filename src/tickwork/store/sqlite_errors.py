"""SQLite's errors as tickwork's: a lock held, a full disk, a file out of reach or made
read-only is ``StoreUnavailableError`` (retried: an operator can cure each one), a
broken unique key ``ConflictError``, the rest ``StoreError``, each naming the file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from tickwork.errors import ConflictError, StoreError, StoreUnavailableError
from tickwork.limits import not_utf8

#: SQLite's primary result codes that waiting (or an operator) cures, with the reason
#: given with the error: what to look at, in a few words.
_PASSING: Final = {
    sqlite3.SQLITE_BUSY: "another process holds the database's write lock",
    sqlite3.SQLITE_LOCKED: "another process holds the database's write lock",
    sqlite3.SQLITE_FULL: "the disk holding the database is full",
    sqlite3.SQLITE_IOERR: "the disk holding the database fails to read or write",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_READONLY: "the database file cannot be written (read-only)",
}


def busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because a lock is held (SQLITE_BUSY or SQLITE_LOCKED)."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def full(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused because the disk is full (SQLITE_FULL)."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_FULL


def translated(exc: sqlite3.Error, path: str) -> Exception:
    """The tickwork error for a ``sqlite3`` error.

    SQLite's own words for a full disk (``database or disk is full``) or a read-only
    file do not say what to do: the message adds it. Both are passing troubles, like a
    lock held: a node retries its writes until space is freed or the mode fixed.
    """
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(text)
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    reason = _PASSING.get(code)
    if reason is None:
        return StoreError(f"SQLite database {path!r}: {text}")
    hinted = f"SQLite database {path!r}: {text}{_hint(code, path)}"
    return StoreUnavailableError(hinted, reason=reason)


def _hint(code: int, path: str) -> str:
    """What to do about a passing error, when SQLite's words do not say it."""
    folder = os.path.dirname(os.path.abspath(path))
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return (
            " (another connection holds its write lock past the busy timeout: a long"
            " transaction, a backup, a sqlite3 shell; writes are retried)"
        )
    if code == sqlite3.SQLITE_FULL:
        return (
            f" (the file system of {folder} has no room left: free space there; writes"
            " are retried until they fit)"
        )
    if code == sqlite3.SQLITE_READONLY:
        return (
            f" (the file, its -wal or -shm file or {folder} is not writable by this"
            " process: fix the permissions or the mount; writes are retried)"
        )
    return ""


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
