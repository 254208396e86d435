"""``SQLiteStore.try_add_schedule``: an add committed on the caller's thread, or nothing.

It is called on the event loop, so it must never wait: each test holds a lock the way
the engine or another process does and checks that it gives up at once, writing
nothing, and that an add it does make is the same durable row ``add_schedule`` makes.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from tests.store.conftest import T0, at, every_second, make_schedule, reap
from tickwork.errors import ConflictError, StoreError
from tickwork.models import FirePlan, Run, Schedule
from tickwork.store import open_store
from tickwork.store.sqlite import INLINE_RUN, SQLiteStore
from tickwork.store.sqlite_wal import BACKSTOP_FRAMES, CATCH_UP_FRAMES

#: Holds the file's write lock from another process until told to let go.
LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


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


def add_inline(store: SQLiteStore, schedule: Schedule) -> Schedule:
    """What ``Scheduler`` does: on this thread if possible, else the usual way."""
    return store.try_add_schedule(schedule) or store.add_schedule(schedule)


def test_an_inline_add_is_committed_and_equals_add_schedule(
    store: SQLiteStore, db_path: Path
) -> None:
    inline = make_schedule("inline", schedule="*/5 * * * *", data={"a": 1}, tags=("x",))
    pooled = make_schedule("pooled", schedule="*/5 * * * *", data={"a": 1}, tags=("x",))
    returned = store.try_add_schedule(inline)
    assert returned == inline
    store.add_schedule(pooled)
    other = open_store(f"sqlite:///{db_path}")  # another connection sees the commit
    try:
        seen = other.get_schedule("inline")
        assert seen is not None
        assert seen == other.get_schedule("pooled").replace(id="inline")  # type: ignore[union-attr]
        assert seen == returned
    finally:
        other.close()


def test_a_duplicate_id_conflicts_and_leaves_no_transaction_open(store: SQLiteStore) -> None:
    store.add_schedule(make_schedule("dup"))
    with pytest.raises(ConflictError, match="schedule 'dup' already exists"):
        store.try_add_schedule(make_schedule("dup"))
    assert store.try_add_schedule(make_schedule("next")) is not None
    store.add_schedule(make_schedule("pooled"))  # the write lock was released
    assert {s.id for s in store.list_schedules()} == {"dup", "next", "pooled"}


def test_gives_up_at_once_while_another_thread_of_the_process_writes(
    store: SQLiteStore,
) -> None:
    store.add_schedule(make_schedule("due", next_fire_at=T0))
    inside, release = threading.Event(), threading.Event()
    plan_one = every_second()

    def slow_plan(schedule: Schedule, active: Sequence[Run], now: datetime) -> FirePlan:
        inside.set()  # the fire's write transaction is open
        release.wait(10)
        return plan_one(schedule, active, now)

    firing = threading.Thread(target=store.fire_due, args=(at(0), slow_plan, 10))
    firing.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        assert store.try_add_schedule(make_schedule("blocked")) is None
        assert time.monotonic() - started < 0.1
    finally:
        release.set()
        firing.join(10)
    assert store.get_schedule("blocked") is None
    assert store.try_add_schedule(make_schedule("after")) is not None


def test_gives_up_at_once_while_another_process_holds_the_file(
    store: SQLiteStore, db_path: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()  # the store's busy timeout is 10 s: it must not wait
        assert store.try_add_schedule(make_schedule("blocked")) is None
        assert time.monotonic() - started < 0.5
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.wait(10) == 0
    finally:
        reap(holder)
    assert store.get_schedule("blocked") is None
    assert store.try_add_schedule(make_schedule("after")) is not None


def test_never_inline_when_each_commit_fsyncs(db_path: Path) -> None:
    store = open_store(f"sqlite:///{db_path}?synchronous=full")
    assert isinstance(store, SQLiteStore)
    try:
        assert store.try_add_schedule(make_schedule("s")) is None
        assert store.get_schedule("s") is None
    finally:
        store.close()


def test_a_run_of_inline_adds_leaves_one_to_a_pooled_connection(store: SQLiteStore) -> None:
    results = [store.try_add_schedule(make_schedule(f"s{i}")) for i in range(INLINE_RUN + 1)]
    assert all(r is not None for r in results[:INLINE_RUN])
    assert results[INLINE_RUN] is None
    store.add_schedule(make_schedule("pooled"))
    assert store.try_add_schedule(make_schedule("again")) is not None


def test_the_wal_is_checkpointed_however_many_adds_go_inline(
    store: SQLiteStore, db_path: Path
) -> None:
    # Adds that never pause leave each passive checkpoint behind the newest pages, so
    # the WAL would never start over: past CATCH_UP_FRAMES the checkpointer must get
    # the write lock among them. Some 1,000 of these adds bring that pass on an idle
    # machine; the bound leaves its thread time to get the CPU on a busy one.
    added = 0
    while store.checkpointer.catch_ups == 0:
        assert added < 30_000, "no pass holding the write lock: the WAL never starts over"
        add_inline(store, make_schedule(f"s{added:05}", metadata={"pad": "x" * 200}))
        added += 1
    # Every page is copied: the next commit starts the WAL over from its beginning (once
    # no other pass holds a lock it needs), so 200 more adds (some 1,100 pages) leave it
    # well below CATCH_UP_FRAMES. Without the pass it would hold every page since the
    # first add.
    assert store.checkpointer.idle.wait(10)
    for i in range(200):
        add_inline(store, make_schedule(f"t{i:05}", metadata={"pad": "x" * 200}))
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # reads the file
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
    assert frames < CATCH_UP_FRAMES // 2, frames
    # Whatever the CPU, the connections' own checkpoints bound the file.
    assert Path(f"{db_path}-wal").stat().st_size < 1.05 * BACKSTOP_FRAMES * 4120
    assert len(store.list_schedules()) == added + 200


def test_a_closed_store_refuses(store: SQLiteStore) -> None:
    assert store.try_add_schedule(make_schedule("a")) is not None
    store.close()
    with pytest.raises(StoreError, match="not open"):
        store.try_add_schedule(make_schedule("b"))


def test_the_inline_add_is_a_capability_of_every_store(db_url: str) -> None:
    """The engine asks any ``Store``; one that cannot add without waiting (PostgreSQL,
    whose commit is a round trip) answers None and writes nothing."""
    s = open_store(db_url)
    try:
        schedule = make_schedule("capability")
        added = s.try_add_schedule(schedule)
        if isinstance(s, SQLiteStore):
            assert added is not None and added.id == "capability"
            assert s.get_schedule("capability") is not None
        else:
            assert added is None
            assert s.get_schedule("capability") is None
    finally:
        s.close()
