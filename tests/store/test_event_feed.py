"""The event feed the database writes with each change (both databases, real files and servers).

What a follower relies on: every change yields its event in the same transaction,
whoever wrote it; ids increase in commit order, so reading "after the last id seen"
never skips a transaction that committed late; retention never sends ids back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from tests.going_back import go_back, keep_a_copy
from tickwork.engine.feed import EventFeed
from tickwork.models import AttemptOutcome, FeedEvent
from tickwork.store import Store, open_store

from .conftest import T0, at, by_hand, every_second, finish_one, make_run, make_schedule


def kinds(events: list[FeedEvent]) -> list[str]:
    return [e.type for e in events]


def test_every_change_of_a_schedule_and_its_runs_is_an_event_in_order(store: Store) -> None:
    s = store.add_schedule(make_schedule("s1", owner="alice"))
    fired = store.fire_due(at(1.5), every_second(), 10)  # T0 and T0+1s: two pending runs
    assert len(fired) == 2
    claimed = store.claim_runs("n1", at(2), at(60), 1, {"t"}, {})
    assert len(claimed) == 1
    run = claimed[0]
    finish_one(store, run.id, "n1", 1, AttemptOutcome("succeeded", result=1), at(3))
    store.update_schedule(s.replace(name="renamed", updated_at=at(4)))
    store.set_paused(["s1"], True, at(5), lambda sch, now: None)
    store.set_paused(["s1"], False, at(6), lambda sch, now: at(7))
    store.delete_schedule("s1", at(8))  # the other pending run is cancelled with it

    events = store.read_events(0)
    assert kinds(events) == [
        "schedule.created",
        "run.pending",
        "run.pending",
        "run.started",
        "run.succeeded",
        "schedule.updated",
        "schedule.paused",
        "schedule.resumed",
        "run.cancelled",
        "schedule.deleted",
    ]
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert store.last_event_id() == ids[-1]
    assert all(e.schedule_id == "s1" for e in events)
    started = events[3]
    assert (started.run_id, started.status, started.attempt) == (run.id, "running", 1)
    assert started.task == "t" and started.node == "n1"
    assert events[4].status == "succeeded" and events[4].finished_at == at(3)
    # Who may see it: the owner at the time, even after the schedule is gone.
    assert {e.owner for e in events} == {"alice"}
    # Reading after an id returns exactly the rest.
    assert store.read_events(ids[3], 3) == events[4:7]


def test_an_update_that_pauses_and_changes_settings_is_both_events(store: Store) -> None:
    """A subscriber hears a change made with a pause or resume: ``schedule.updated``,
    then ``schedule.paused`` (or ``schedule.resumed``). A write that only pauses or
    resumes, however made, is that event alone, as ``pause`` makes it."""
    s = store.add_schedule(make_schedule("s1", owner="alice"))
    first = store.last_event_id()
    s = store.update_schedule(
        s.replace(paused=True, status="paused", paused_at=at(1), updated_at=at(1))
    )
    s = store.update_schedule(
        s.replace(paused=False, status="active", description="back", updated_at=at(2))
    )
    s = store.update_schedule(
        s.replace(paused=True, status="paused", timeout=60.0, updated_at=at(3))
    )
    store.update_schedule(s.replace(description="still paused", updated_at=at(4)))
    events = store.read_events(first)
    assert [(e.type, e.status, e.owner) for e in events] == [
        ("schedule.paused", "paused", "alice"),
        ("schedule.updated", "active", "alice"),
        ("schedule.resumed", "active", "alice"),
        ("schedule.updated", "paused", "alice"),
        ("schedule.paused", "paused", "alice"),
        ("schedule.updated", "paused", "alice"),
    ]


def test_a_fire_of_the_engine_does_not_look_like_a_change_of_the_schedule(store: Store) -> None:
    store.add_schedule(make_schedule("s1"))
    first = store.last_event_id()
    store.fire_due(at(0.5), every_second("skipped"), 10)
    assert kinds(store.read_events(first)) == ["run.skipped"]


def test_a_change_made_by_hand_is_an_event_too(db_url: str, store: Store) -> None:
    store.add_schedule(make_schedule("s1"))
    store.insert_runs([make_run(None, T0, task="t")])
    first = store.last_event_id()
    by_hand(db_url, "UPDATE runs SET status = 'failed', error = 'killed by hand'")
    (event,) = store.read_events(first)
    assert (event.type, event.error) == ("run.failed", "killed by hand")


@pytest.mark.postgres
def test_ids_follow_commit_order_not_the_order_rows_were_written(pg_url: str) -> None:
    """A transaction that wrote its event first but committed last gets the later id: a
    follower that had read past the other one's event still sees it."""
    import psycopg

    store = open_store(pg_url)
    try:
        slow = psycopg.connect(pg_url)
        slow.execute(
            "INSERT INTO schedules (id, task, schedule) VALUES ('slow', 't', 'manual')"
        )  # its event row is written now, inside an open transaction
        store.add_schedule(make_schedule("fast"))
        seen = store.read_events(0)
        assert [(e.type, e.schedule_id) for e in seen] == [("schedule.created", "fast")]
        slow.commit()
        slow.close()
        later = store.read_events(seen[-1].id)
        assert [(e.type, e.schedule_id) for e in later] == [("schedule.created", "slow")]
        assert later[0].id == seen[-1].id + 1
    finally:
        store.close()


def test_retention_deletes_old_events_and_ids_never_go_back(store: Store) -> None:
    for i in range(3):
        store.add_schedule(make_schedule(f"s{i}"))
    last = store.last_event_id()
    future = T0.replace(year=2100)
    store.delete_events_before(future)
    # SQLite keeps the newest row (its ids come from the table); PostgreSQL need not.
    assert [e.id for e in store.read_events(0)] in ([last], [])
    store.add_schedule(make_schedule("again"))
    assert store.read_events(last)[0].id == last + 1
    # Runs' retention takes the feed with it.
    store.delete_runs_before(future + timedelta(days=1))
    assert len(store.read_events(0)) <= 1


def test_a_commit_before_a_watch_first_waits_is_not_lost(db_url: str) -> None:
    """A follower reads the newest event id, then its watch thread first waits: a commit
    in between must wake it (it was folded into the file watch's starting point, and
    the follower saw it only at its next poll, seconds later)."""
    reader = open_store(db_url)
    writer = open_store(db_url)
    watch = reader.watch_events()
    try:
        writer.add_schedule(make_schedule("early"))
        assert watch.wait(2.0)  # may have been missed: the follower reads again
        assert not watch.wait(0.2)  # nothing since
        writer.add_schedule(make_schedule("later"))
        assert watch.wait(2.0)
    finally:
        watch.close()
        reader.close()
        writer.close()


async def test_a_follower_sees_what_another_connection_commits(db_url: str) -> None:
    reader = open_store(db_url)
    writer = open_store(db_url)
    feed = EventFeed(reader, poll=5.0)  # long poll: the watch must be what wakes it
    batches: list[list[FeedEvent]] = []
    feed.add_listener(lambda events: batches.append(list(events)))
    try:
        await feed.start()
        start = feed.last_id
        await asyncio.to_thread(writer.add_schedule, make_schedule("w1", owner="bob"))
        assert await feed.wait(start, 3.0), "the follower did not see the commit"
        events = await feed.after(start)
        assert [(e.type, e.schedule_id, e.owner) for e in events] == [
            ("schedule.created", "w1", "bob")
        ]
        assert batches == [events]
        # A reader further behind than memory is served from the database.
        feed._ids.clear()
        feed._recent.clear()
        assert await feed.after(start) == events
        assert await feed.after(feed.last_id) == []
        assert not await feed.wait(feed.last_id, 0.2)
    finally:
        await feed.stop()
        reader.close()
        writer.close()


async def test_a_reader_cancelled_again_while_it_stops_waiting_leaves_the_feed_whole(
    sqlite_url: str,
) -> None:
    """A server cancels a dropped client's request at every await until it ends (an
    AnyIO cancel scope): the reader's wait ends cleanly and the feed still wakes the
    other readers and stops at once."""
    reader = open_store(sqlite_url)
    writer = open_store(sqlite_url)
    feed = EventFeed(reader, poll=5.0)
    try:
        await feed.start()
        start = feed.last_id
        # Many readers dropped at once (a server stopping) contend for the feed's
        # wake-up as each stops waiting.
        dropped = [asyncio.create_task(feed.wait(start, 30)) for _ in range(8)]
        await asyncio.sleep(0.05)
        for _ in range(5):  # cancelled, and again while they are stopping
            for task in dropped:
                task.cancel()
            await asyncio.sleep(0)
        for task in dropped:
            with pytest.raises(asyncio.CancelledError):
                await task
        other = asyncio.create_task(feed.wait(start, 5))
        await asyncio.to_thread(writer.add_schedule, make_schedule("w1"))
        assert await asyncio.wait_for(other, 5)
    finally:
        await asyncio.wait_for(feed.stop(), 5)
        reader.close()
        writer.close()


async def _next_batch(feed: EventFeed, after: int, era: int) -> tuple[list[FeedEvent], int, int]:
    """What a stream reads next from ``after`` in ``era`` (as ``GET /events`` does)."""
    for _ in range(100):
        after, era = feed.reposition(after, era)
        events = await feed.after(after)
        if events:
            return events, events[-1].id, era
        await feed.wait(after, 0.2)
    raise AssertionError(f"nothing after {after} within 20 s (feed at {feed.last_id})")


async def test_a_database_gone_back_is_followed_from_its_newest_event(
    db_url: str, tmp_path: Path
) -> None:
    """Restored from an older backup or recreated under a running follower, the database
    hands out ids the follower had passed: the follower starts over from the database's
    newest event, and a reader still at its old position moves there with it, instead
    of hearing nothing until the ids pass where the old database had come to."""
    writer = open_store(db_url)
    writer.add_schedule(make_schedule("old"))
    backup = tmp_path / "backup.db"
    keep_a_copy(db_url, backup)
    reader = open_store(db_url)
    feed = EventFeed(reader, poll=0.2)
    try:
        await feed.start()
        after, era = feed.last_id, feed.era
        for i in range(5):
            await asyncio.to_thread(writer.add_schedule, make_schedule(f"lost{i}"))
        events, after, era = await _next_batch(feed, after, era)
        while after < await asyncio.to_thread(writer.last_event_id):
            more, after, era = await _next_batch(feed, after, era)
            events += more
        assert [e.schedule_id for e in events] == [f"lost{i}" for i in range(5)]
        high = after

        writer.close()
        await asyncio.to_thread(go_back, db_url, backup)
        writer = open_store(db_url)
        assert writer.last_event_id() < high
        # A reader waiting at its old position is woken when the feed starts over (the
        # events committed before the feed noticed, within a poll, are passed over).
        assert await feed.wait(high, 20.0)
        assert feed.era == 1
        await asyncio.to_thread(writer.add_schedule, make_schedule("new"))

        events, after, era = await _next_batch(feed, high, era)
        assert [(e.type, e.schedule_id) for e in events] == [("schedule.created", "new")]
        assert era == feed.era == 1 and feed.last_id == after < high
        await asyncio.to_thread(writer.add_schedule, make_schedule("newer"))
        events, _, _ = await _next_batch(feed, after, era)
        assert [e.schedule_id for e in events] == ["newer"]
    finally:
        await feed.stop()
        reader.close()
        writer.close()
