"""A database that goes back under the processes using it: restored from an older
backup (SQLite, in place, as the ``sqlite3`` shell's ``.restore`` does: the same file)
or recreated empty (PostgreSQL: dropped and made again)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tickwork.store import open_store


def keep_a_copy(db_url: str, backup: Path) -> None:
    """A backup of the database as it is now (SQLite; PostgreSQL needs none)."""
    if not db_url.startswith("sqlite"):
        return
    with (
        contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as live,
        contextlib.closing(sqlite3.connect(backup)) as copy,
    ):
        live.backup(copy)


def go_back(db_url: str, backup: Path) -> None:
    """SQLite: the backup ``keep_a_copy`` made written back over the live file.
    PostgreSQL: the database dropped (its connections ended) and made again, with
    tickwork's schema and nothing else."""
    if db_url.startswith("sqlite"):
        with (
            contextlib.closing(sqlite3.connect(backup)) as copy,
            contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as live,
        ):
            copy.backup(live)
        return
    import psycopg

    parts = urlsplit(db_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    open_store(db_url).close()  # the schema, made again
