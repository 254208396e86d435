"""The WAL of a SQLite store is checkpointed by a thread of the store, not in the
commits (``store/sqlite_wal.py``): a commit that takes the WAL past 1000 pages no
longer copies them to the database file while every writer waits."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.small_disk import small_disk
from tests.store.conftest import T0, make_schedule
from tickwork.errors import StoreUnavailableError
from tickwork.store import open_store
from tickwork.store.sqlite import SQLiteStore
from tickwork.store.sqlite_wal import Checkpointer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tickwork.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    s = open_store(f"sqlite:///{db_path}")
    assert isinstance(s, SQLiteStore)
    try:
        yield s
    finally:
        s.close()


def test_the_checkpointer_starts_the_wal_over(store: SQLiteStore, db_path: Path) -> None:
    # Each add writes some five pages: 1500 of them, 30 MB of WAL, were the WAL never
    # checkpointed (the store's connections checkpoint by themselves only past 10,000
    # pages: see sqlite_wal).
    for i in range(1500):
        store.add_schedule(make_schedule(f"s{i:04}", metadata={"pad": "x" * 200}))
        # Each checkpoint done before the next commit, which then starts the WAL over.
        assert store.checkpointer.idle.wait(10)
    assert store.checkpointer.done >= 3
    wal = Path(f"{db_path}-wal").stat().st_size
    assert wal < 10_000_000, wal
    assert len(store.list_schedules()) == 1500


def test_the_checkpointer_is_ready_after_the_first_commit(store: SQLiteStore) -> None:
    """Its thread starts, and opens its connection, at the first commit: not in the
    commit that first needs a checkpoint (a burst's fire), whose runs would wait."""
    store.add_schedule(make_schedule("s"))
    assert store.checkpointer.connected.wait(10)
    assert store.checkpointer.done == 0


def test_a_checkpointer_that_cannot_open_its_connection_keeps_its_thread() -> None:
    """Opening its connection fails as the store's connections do (the file cannot be
    opened): each pass fails quietly, the commits' own checkpoints still work, and the
    thread is there for the next pass."""
    attempts: list[int] = []

    def cannot_open() -> sqlite3.Connection:
        attempts.append(1)
        raise StoreUnavailableError("cannot open SQLite database 'x.db': disk I/O error")

    checkpointer = Checkpointer(cannot_open, threading.Lock(), every=10)
    try:
        checkpointer.wrote(100)  # starts the thread, and a checkpoint is due
        assert checkpointer.idle.wait(10)
        checkpointer.wrote(100)
        assert checkpointer.idle.wait(10)
        thread = checkpointer._thread
        assert thread is not None and thread.is_alive()
        assert len(attempts) >= 2 and checkpointer.done == 0
        assert not checkpointer.connected.is_set()
    finally:
        checkpointer.close()


def test_a_closed_store_stops_its_checkpointer_and_a_reopened_one_starts_again(
    store: SQLiteStore, db_path: Path
) -> None:
    for i in range(300):
        store.add_schedule(make_schedule(f"s{i:04}"))
    first = store.checkpointer
    assert first.idle.wait(10) and first.done >= 1
    store.close()
    assert first._thread is not None and not first._thread.is_alive()
    store.open()
    for i in range(300):
        store.add_schedule(make_schedule(f"t{i:04}"))
    assert store.checkpointer is not first
    assert store.checkpointer.idle.wait(10) and store.checkpointer.done >= 1


def test_a_full_disk_gives_the_wal_back(tmp_path: Path) -> None:
    """A WAL that fills the disk between two checkpoints (a small disk, a checkpointer
    behind) would fail every commit for good: the first commit refused for a full disk
    has the WAL checkpointed and truncated, and the next one fits."""
    with small_disk(tmp_path / "disk", "2m") as disk:
        store = open_store(f"sqlite:///{disk}/t.db")
        assert isinstance(store, SQLiteStore)
        try:
            store.checkpointer.every = 10**9  # behind: no checkpoint of its own
            pad = {"pad": "x" * 20_000}  # the same pages over and over: the file stays
            store.add_schedule(make_schedule("s", metadata=pad))
            store.delete_schedule("s", T0)
            with sqlite3.connect(disk / "t.db") as conn:  # the file as large as it gets
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with pytest.raises(StoreUnavailableError, match="no room left") as caught:
                for _ in range(1000):
                    store.add_schedule(make_schedule("s", metadata=pad))
                    store.delete_schedule("s", T0)
            assert caught.value.reason == "the disk holding the database is full"
            assert store.checkpointer.idle.wait(30)
            assert store.checkpointer.reclaims == 1
            store.delete_schedule("s", T0)
            store.add_schedule(make_schedule("s2"))
            assert [s.id for s in store.list_schedules()] == ["s2"]
            assert Path(f"{disk}/t.db-wal").stat().st_size < 100_000
        finally:
            store.close()
