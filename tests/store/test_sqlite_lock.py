"""Another process holding a SQLite database's write lock (``BEGIN IMMEDIATE`` in a
shell, a long transaction): a store's reads answer at once, its writes wait the busy
timeout, then fail with a passing error that says why, and work again once the lock
is let go."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.store.conftest import make_schedule
from tickwork.errors import StoreUnavailableError
from tickwork.store import open_store

HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def test_a_write_lock_held_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = open_store(f"sqlite:///{db}?busy_timeout=1")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        store.add_schedule(make_schedule("before"))
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        assert [s.id for s in store.list_schedules()] == ["before"]
        assert time.monotonic() - started < 0.5  # a read waits for no writer
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="holds its write lock") as caught:
            store.add_schedule(make_schedule("during"))
        assert 0.9 < time.monotonic() - started < 5
        assert caught.value.reason == "another process holds the database's write lock"
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(10) == 0
        store.add_schedule(make_schedule("after"))
        assert [s.id for s in store.list_schedules()] == ["after", "before"]
    finally:
        holder.kill()
        holder.communicate()  # closes its pipes
        store.close()
