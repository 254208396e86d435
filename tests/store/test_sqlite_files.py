"""The files of a SQLite store deleted or replaced under it (``store/sqlite_file.py``):
its writes stop with an error that says so, instead of going on, without a word, into
a file no other process sees; its reads go on; and a file put back as it was is
written again. And a fresh file opened by many processes at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.conftest import make_schedule
from tickwork.errors import StoreUnavailableError
from tickwork.store import open_store
from tickwork.store.migrate import load_migrations
from tickwork.store.sqlite import SQLiteStore
from tickwork.store.sqlite_file import CHECK_INTERVAL


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    s = open_store(f"sqlite:///{db}")
    assert isinstance(s, SQLiteStore)
    try:
        s.add_schedule(make_schedule("before"))
        yield s
    finally:
        s.close()


def _refused(store: SQLiteStore, sid: str) -> str:
    time.sleep(CHECK_INTERVAL + 0.1)
    with pytest.raises(StoreUnavailableError) as caught:
        store.add_schedule(make_schedule(sid))
    assert caught.value.reason == "the database file was deleted or replaced under this process"
    return str(caught.value)


def test_a_deleted_file_is_not_written_to(store: SQLiteStore, db: Path) -> None:
    """Before: the node went on committing into the deleted file, and every run it
    recorded from then on was gone when it stopped."""
    db.unlink()
    message = _refused(store, "after")
    assert "the file was deleted or moved away while this process had it open" in message
    assert "Stop every tickwork process on it" in message
    assert [s.id for s in store.list_schedules()] == ["before"]  # reads go on


def test_a_replaced_file_is_not_written_to(store: SQLiteStore, db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    os.replace(other, db)
    assert "the file was replaced by another file" in _refused(store, "after")


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_deleted_wal_or_shm_file_stops_the_writes(
    store: SQLiteStore, db: Path, suffix: str
) -> None:
    Path(f"{db}{suffix}").unlink()
    # A connection opened since (the checkpointer's, say) may have made a new one.
    assert f"its {suffix} file was " in _refused(store, "after")


def test_a_file_put_back_is_written_again(store: SQLiteStore, db: Path, tmp_path: Path) -> None:
    away = tmp_path / "away.db"
    db.rename(away)
    _refused(store, "while-away")
    away.rename(db)
    time.sleep(CHECK_INTERVAL + 0.1)
    store.add_schedule(make_schedule("after"))
    assert [s.id for s in store.list_schedules()] == ["after", "before"]


START_AT_ONCE = """
import sys, time
from tickwork.store import open_store
from tickwork.store.migrate import load_migrations
at = float(sys.argv[2])
while time.time() < at:
    pass
store = open_store(sys.argv[1])
print(store.schema_version())
store.close()
"""


def test_processes_opening_a_fresh_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    """Eight processes start on a file that does not exist yet, at the same instant:
    each opens it (one switches it to WAL, one applies the migrations, under the
    file's write lock) and finds it complete."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    at = str(time.time() + 1.5)  # after every interpreter has started
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START_AT_ONCE, url, at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, outputs
    latest = len(load_migrations("sqlite"))
    assert {out.strip() for out, _err in outputs} == {str(latest)}
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    conn.close()
    assert versions == list(range(1, latest + 1))
