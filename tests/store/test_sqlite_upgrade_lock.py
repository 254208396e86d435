"""Opening a SQLite file while another process holds its write lock for longer than
``busy_timeout``: a migration of a large file (building an index over millions of
runs) does, and so does a long transaction or a ``sqlite3`` shell.

A file whose schema is up to date opens without the write lock, so a node or a
``tickwork status`` starts beside such a transaction. A file whose schema is behind
waits for the lock (another process is most likely migrating it) instead of failing
with "database is locked" once ``busy_timeout`` has passed, and then finds it migrated
or migrates it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.conftest import open_at_version
from tickwork.store import open_store
from tickwork.store.migrate import load_migrations

#: Holds the file's write lock (BEGIN IMMEDIATE) for ``seconds``, then commits.
HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""

BUSY = 0.3  # the busy_timeout of the opening process, well under the hold


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


def _hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.communicate(timeout=10)


def test_an_up_to_date_file_opens_while_another_process_holds_its_write_lock(
    db: Path, holders: list[subprocess.Popen[str]]
) -> None:
    """Before: every open took the write lock to look at the schema version, and failed
    with "database is locked" after ``busy_timeout``."""
    open_store(f"sqlite:///{db}").close()
    holders.append(_hold(db, 30))
    started = time.monotonic()
    store = open_store(f"sqlite:///{db}?busy_timeout={BUSY}")
    try:
        assert time.monotonic() - started < 5
        assert store.migrated_on_open == ()
        assert store.schema_version() == len(load_migrations("sqlite"))
        assert store.list_schedules() == []  # reads go on beside the writer
    finally:
        store.close()


def test_an_older_file_waits_for_the_process_holding_its_write_lock_then_migrates(
    db: Path, holders: list[subprocess.Popen[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the open failed with "database is locked" after ``busy_timeout``, so a
    node starting while another migrated a large file exited."""
    open_at_version(f"sqlite:///{db}", 7).close()
    hold = 2.0
    holders.append(_hold(db, hold))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tickwork.store"):
        store = open_store(f"sqlite:///{db}?busy_timeout={BUSY}")
    try:
        assert time.monotonic() - started >= hold - 0.5
        latest = len(load_migrations("sqlite"))
        assert store.migrated_on_open == tuple(range(8, latest + 1))
        assert store.schema_version() == latest
    finally:
        store.close()
    waits = [r.getMessage() for r in caplog.records if "to migrate its schema" in r.getMessage()]
    assert waits, "the wait for the write lock is not said"
    assert str(db) in waits[0] and "another process holds it" in waits[0]


def test_processes_opening_an_older_file_at_once_migrate_it_once(db: Path) -> None:
    """Four processes open a file an older tickwork left, at the same instant, with a
    short busy_timeout: each opens it, one applies the migrations, and each migration
    is recorded once."""
    open_at_version(f"sqlite:///{db}", 1).close()
    script = (
        "import sys, time\n"
        "from tickwork.store import open_store\n"
        "at = float(sys.argv[2])\n"
        "while time.time() < at: pass\n"
        "s = open_store(sys.argv[1])\n"
        "print(len(s.migrated_on_open), s.schema_version())\n"
        "s.close()\n"
    )
    url = f"sqlite:///{db}?busy_timeout=0.05"
    at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outputs
    latest = len(load_migrations("sqlite"))
    applied = sorted(int(out.split()[0]) for out, _err in outputs)
    assert applied == [0, 0, 0, latest - 1]
    assert {out.split()[1] for out, _err in outputs} == {str(latest)}
    store = open_store(f"sqlite:///{db}")
    try:
        with store._read() as tx:  # type: ignore[attr-defined]
            rows = tx.execute("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        store.close()
    assert [row[0] for row in rows] == list(range(1, latest + 1))
