"""Whether a SQLite database's files are still the ones a store opened.

A process keeps its open files when they are deleted or replaced at their path: SQLite
goes on committing into a database file that was deleted (its content gone when the
process ends, with no error), or beside a -wal or -shm file other processes no longer
share (each then works on its own copy of the truth). A store notes the identity
(device and inode) of the three files when it opens them, and looks again before a
write, at most every ``CHECK_INTERVAL`` seconds: a write finds a clock read on its
way, not a file system call. A file that changed stops the writes of this store with
a ``StoreUnavailableError`` that says what happened and what to do. Connections
opened after that are opened read-write without creating the file (``connect_uri``):
one would otherwise make a new, empty database at the path, beside the old WAL.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

from tickwork.errors import StoreUnavailableError

#: Seconds between two looks at the files (a write in between is not held).
CHECK_INTERVAL: Final = 0.5
#: The files of one database: the file itself, its WAL and its shared-memory index.
SUFFIXES: Final = ("", "-wal", "-shm")

_REASON: Final = "the database file was deleted or replaced under this process"


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def connect_uri(path: str) -> str:
    """The URI that opens the database at ``path`` only if it exists (``mode=rw``)."""
    return Path(path).absolute().as_uri() + "?mode=rw"


class FileIdentity:
    """The identity of a database's files as opened, and the verdict of the last look."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._opened: dict[str, tuple[int, int]] = {}
        self._looked = 0.0
        self._problem: str | None = None

    def note(self) -> None:
        """Note the files as they are now (after the store opened them)."""
        self._opened = {}
        for suffix in SUFFIXES:
            found = _identity(self._path + suffix)
            if found is not None:
                self._opened[suffix] = found
        self._looked = time.monotonic()
        self._problem = None

    @property
    def noted(self) -> bool:
        """Whether the files were noted (the store is open)."""
        return bool(self._opened)

    def check(self, *, now: bool = False) -> None:
        """Raise ``StoreUnavailableError`` if a file was deleted or replaced since
        ``note`` (looked at most every ``CHECK_INTERVAL``, the verdict kept between;
        ``now``: look now)."""
        clock = time.monotonic()
        if now or clock - self._looked >= CHECK_INTERVAL:
            self._looked = clock
            self._problem = self._look()
        if self._problem is not None:
            raise StoreUnavailableError(self._problem, reason=_REASON)

    def _look(self) -> str | None:
        for suffix, opened in self._opened.items():
            found = _identity(self._path + suffix)
            if found == opened:
                continue
            what = "the file" if not suffix else f"its {suffix} file"
            how = "deleted or moved away" if found is None else "replaced by another file"
            then = (
                "Stop every tickwork process on it, then put the file back (or start"
                " afresh: remove the database with its -wal and -shm files)"
                if not suffix
                else "Stop every tickwork process on it, then start them again"
            )
            return (
                f"SQLite database {self._path!r}: {what} was {how} while this process had"
                " it open; nothing more is written, so that no commit goes where no other"
                f" process sees it. {then}"
            )
        return None
