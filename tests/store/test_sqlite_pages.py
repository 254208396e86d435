"""A page read again while the SQLite file has not changed is answered without a read;
any commit, by this connection or another (another process), makes it read again."""

from __future__ import annotations

from tickwork.store import open_store
from tickwork.store.records import ScheduleFilter

from .conftest import at, by_hand, make_schedule

PAGE = ScheduleFilter(limit=50)


def test_a_kept_page_follows_every_commit(sqlite_url: str) -> None:
    store, other = open_store(sqlite_url), open_store(sqlite_url)
    try:
        for i in range(3):
            store.add_schedule(make_schedule(f"s{i}"))
        first = store.schedule_revisions({}, PAGE)
        held = {sid: rev for sid, rev, _ in first}
        assert [sid for sid, _, record in first if record is not None] == ["s0", "s1", "s2"]
        # Unchanged: every row held, nothing to read.
        assert store.schedule_revisions(held, PAGE) == [(sid, held[sid], None) for sid in held]

        # Another store's connections (as another process's) commit a change.
        other.update_schedule(other.get_schedule("s1").replace(name="renamed", updated_at=at(1)))
        seen = store.schedule_revisions(held, PAGE)
        changed = [(sid, record.name) for sid, _, record in seen if record is not None]
        assert changed == [("s1", "renamed")]
        held = {sid: rev for sid, rev, _ in seen}

        # This store's own commit, on whichever of its connections.
        store.delete_schedule("s0", at(2))
        assert [sid for sid, _, _ in store.schedule_revisions(held, PAGE)] == ["s1", "s2"]
        other.add_schedule(make_schedule("s3"))
        assert [sid for sid, _, _ in store.schedule_revisions(held, PAGE)] == ["s1", "s2", "s3"]

        # A change by hand, outside tickwork.
        by_hand(sqlite_url, "UPDATE schedules SET revision = revision + 1 WHERE id = 's2'")
        seen = store.schedule_revisions(held, PAGE)
        assert [sid for sid, rev, _ in seen if rev != held.get(sid)] == ["s2", "s3"]
    finally:
        store.close()
        other.close()
