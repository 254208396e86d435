"""PostgreSQL's reads on the event loop (store/postgres_reads.py): the same answers as
the store thread's reads, a killed connection replaced within the read, one loop's
connections never used from another, none left open by ``close``; reads asked
together sharing round trips, never a result asked for before a write it must see, a
statement PostgreSQL refuses failing only the reads it serves (an id, only its own)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tickwork.errors import StoreError, StoreUnavailableError, ValidationError
from tickwork.models import ApiToken
from tickwork.store import open_store
from tickwork.store.postgres import PostgresStore
from tickwork.store.postgres_reads import Batches
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter

from .conftest import T0, at, make_schedule

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresStore]:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        yield store
    finally:
        store.close()


def _backends(admin: psycopg.Connection[Any], pg_url: str) -> int:
    """Sessions on the test database, the one asking (kept open across calls, so that no
    earlier check's session, still ending, is counted) left out."""
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (pg_url.rsplit("/", 1)[1],),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _terminate_others(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (pg_url.rsplit("/", 1)[1],),
        ).fetchall()
    return len(rows)


async def test_reads_on_the_loop_answer_as_the_store_thread_does(pg: PostgresStore) -> None:
    for k in range(5):
        pg.add_schedule(make_schedule(f"s{k}", owner="ann" if k % 2 else "bob"))
    token = ApiToken(id="tok1", user="ann", created_at=T0, expires_at=at(3600))
    pg.create_token(token, "hash-of-the-secret", None)
    assert pg.reads_async()

    everything = pg.schedule_revisions({})
    assert [sid for sid, _, record in everything] == [f"s{k}" for k in range(5)]
    assert all(record is not None for _, _, record in everything)
    held = {sid: revision for sid, revision, _ in everything}
    pg.set_paused(["s3"], True, T0, lambda s, now: None)  # its revision moves
    del held["s1"]  # not held: read
    calls: list[tuple[ScheduleFilter, str | None]] = [
        (ALL_SCHEDULES, None),
        (ScheduleFilter(limit=2), None),
        (ScheduleFilter(after_id="s1", limit=2), None),
        (ScheduleFilter(owner="ann"), None),
        (ScheduleFilter(status="paused"), None),
        (ALL_SCHEDULES, "s3"),
        (ALL_SCHEDULES, "s4"),
        (ALL_SCHEDULES, "missing"),
    ]
    for filters, sid in calls:
        for given in ({}, held):
            expected = pg.schedule_revisions(given, filters, schedule_id=sid)
            got = await pg.schedule_revisions_async(given, filters, schedule_id=sid)
            assert got == expected, (filters, sid)
    read = {sid: record for sid, _, record in await pg.schedule_revisions_async(held)}
    assert read["s1"] is not None and read["s3"] is not None and read["s3"].paused
    assert read["s0"] is None and read["s2"] is None and read["s4"] is None

    assert await pg.get_token_async("tok1") == pg.get_token("tok1")
    assert (await pg.get_token_async("tok1") or (None, ""))[1] == "hash-of-the-secret"
    assert await pg.get_token_async("nope") is None
    pg.revoke_token("tok1", at(1), None)
    found = await pg.get_token_async("tok1")
    assert found is not None and found[0].revoked_at is not None


async def test_a_killed_connection_is_replaced_within_the_read(
    pg: PostgresStore, pg_url: str
) -> None:
    pg.add_schedule(make_schedule("s1"))
    for _ in range(3):
        # Several reads at once open several connections; every one is then killed.
        pages = await asyncio.gather(*(pg.schedule_revisions_async({}) for _ in range(4)))
        assert all([sid for sid, _, _ in page] == ["s1"] for page in pages)
        assert _terminate_others(pg_url) >= 1
        await asyncio.sleep(0.05)
    # The reads after each kill met dead connections and made them again, without
    # failing and without keeping more than before.
    pages = await asyncio.gather(*(pg.schedule_revisions_async({}) for _ in range(4)))
    assert all([sid for sid, _, _ in page] == ["s1"] for page in pages)
    assert await pg.get_token_async("none") is None


def test_one_loops_connections_serve_no_other_loop(pg: PostgresStore) -> None:
    pg.add_schedule(make_schedule("s1"))

    async def first() -> bool:
        await pg.schedule_revisions_async({})
        return pg.reads_async()

    async def other() -> bool:
        return pg.reads_async()

    assert not pg.reads_async()  # no loop running: a store thread reads
    assert asyncio.run(first())
    assert not asyncio.run(other())


async def test_close_leaves_no_connection_open(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    store.add_schedule(make_schedule("s1"))
    await asyncio.gather(*(store.schedule_revisions_async({}) for _ in range(3)))
    store.close()
    assert not store.reads_async()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        # The server ends a session a moment after its client left (longer on a busy machine).
        for _ in range(250):
            if _backends(admin, pg_url) == 0:
                break
            await asyncio.sleep(0.02)
        assert _backends(admin, pg_url) == 0


async def test_reads_asked_together_share_round_trips(pg: PostgresStore) -> None:
    for k in range(10):
        pg.add_schedule(make_schedule(f"s{k}", owner="ann" if k % 2 else "bob"))
    held = {sid: rev for sid, rev, _ in pg.schedule_revisions({})}
    gets = [f"s{k % 12}" for k in range(40)]  # s10 and s11: missing
    lists = [
        ScheduleFilter(owner="ann"),
        ScheduleFilter(limit=3),
        ScheduleFilter(after_id="s4"),
    ] * 5
    rounds = pg._batches.rounds
    got = await asyncio.gather(
        *(pg.schedule_revisions_async(held, schedule_id=sid) for sid in gets),
        *(pg.schedule_revisions_async(held, filters) for filters in lists),
    )
    expected = [pg.schedule_revisions(held, schedule_id=sid) for sid in gets] + [
        pg.schedule_revisions(held, filters) for filters in lists
    ]
    assert got == expected
    # 55 reads, asked at once, in a few round trips (one per connection at most, as
    # every read asked while those were on their way went out with the next one).
    assert pg._batches.rounds - rounds <= 5


async def test_a_read_sees_every_write_made_before_it_was_asked(pg: PostgresStore) -> None:
    pg.add_schedule(make_schedule("s1"))
    stop = asyncio.Event()

    async def busy() -> None:  # keeps round trips on their way all along
        while not stop.is_set():
            await pg.schedule_revisions_async({}, schedule_id="s1")

    others = [asyncio.create_task(busy()) for _ in range(6)]
    try:
        for k in range(30):
            # Written on a thread (another connection) while the reads go on.
            changed = await asyncio.to_thread(
                pg.set_paused, ["s1"], k % 2 == 0, at(k), lambda s, now: now
            )
            assert changed
            stored = pg.schedule_revisions({}, schedule_id="s1")[0][1]
            ((_, revision, _),) = await pg.schedule_revisions_async({}, schedule_id="s1")
            assert revision == stored
    finally:
        stop.set()
        await asyncio.gather(*others)


async def test_a_failed_round_trip_fails_every_read_in_it(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    store.add_schedule(make_schedule("s1"))
    store.close()
    results = await asyncio.gather(
        *(store.schedule_revisions_async({}, schedule_id="s1") for _ in range(5)),
        store.get_token_async("t"),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailableError) for r in results), results


#: Statements PostgreSQL refuses for what they were asked, and what the store makes of
#: each (a value it refuses is bad input; a missing table, a failing store).
REFUSED = [
    ("SELECT %s::int", ("x",), ValidationError),
    ("SELECT 1 / %s", (0,), ValidationError),
    ("SELECT id FROM no_such_table WHERE id = %s", ("s1",), StoreError),
]


@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize(("bad_sql", "bad_params", "error"), REFUSED)
async def test_a_refused_statement_fails_only_its_own_reads(
    pg: PostgresStore,
    position: int,
    bad_sql: str,
    bad_params: tuple[Any, ...],
    error: type[Exception],
) -> None:
    pg.add_schedule(make_schedule("s1", owner="ann"))
    held = {sid: rev for sid, rev, _ in pg.schedule_revisions({})}  # no read after the round
    batches = pg._batches
    with pytest.raises(error) as alone:  # what it fails with when asked alone
        await batches.fetch(bad_sql, bad_params)
    assert not isinstance(alone.value, StoreUnavailableError)
    pid = (await batches.fetch("SELECT pg_backend_pid()", ()))[0][0]

    good = [("SELECT %s::int + 1", (1,)), ("SELECT pg_backend_pid()", ())]
    asked = [*good]
    asked.insert(position, (bad_sql, bad_params))
    rounds = batches.rounds
    results = await asyncio.gather(
        pg.schedule_revisions_async(held, schedule_id="s1"),
        *(batches.fetch(sql, params) for sql, params in asked),
        pg.schedule_revisions_async(held, ScheduleFilter(owner="ann")),
        pg.get_token_async("none"),
        return_exceptions=True,
    )
    assert batches.rounds - rounds == 1  # all asked in one round trip
    by_id, *fetched, page, token = results
    failed = fetched.pop(position)
    assert type(failed) is type(alone.value), failed
    assert fetched == [[(2,)], [(pid,)]]  # on the same connection, after the failure
    assert [sid for sid, _, _ in by_id] == ["s1"]
    assert [sid for sid, _, _ in page] == ["s1"]
    assert token is None

    # The connection is kept, sound: the next round reads on it.
    assert await batches.fetch("SELECT pg_backend_pid()", ()) == [(pid,)]
    assert pg._async_reads._open == 1


#: Ids PostgreSQL cannot be asked for, each refused on its own path: a NUL (psycopg's
#: DataError) and a lone surrogate (no UTF-8 for it), both before the statement is sent.
REFUSED_IDS = ["s\x00", "s\udcff"]


@pytest.mark.parametrize("position", [0, 1, 3])
@pytest.mark.parametrize("bad_id", REFUSED_IDS)
async def test_a_refused_id_fails_only_its_own_reads(
    pg: PostgresStore, bad_id: str, position: int
) -> None:
    """The ids of a round are read in one statement; when it fails, each id is read
    alone: the refused one fails its own readers, the others get their rows."""
    pg.add_schedule(make_schedule("s1", owner="ann"))
    pg.add_schedule(make_schedule("s2", owner="bob"))
    held = {sid: rev for sid, rev, _ in pg.schedule_revisions({})}  # no read after the round
    with pytest.raises(ValidationError) as alone:  # what it fails with when asked alone
        await pg.schedule_revisions_async(held, schedule_id=bad_id)
    pid = (await pg._batches.fetch("SELECT pg_backend_pid()", ()))[0][0]

    asked = ["s1", "s2", "missing", "s1"]
    asked.insert(position, bad_id)
    asked.append(bad_id)  # a second reader of the refused id
    rounds = pg._batches.rounds
    *by_id, page, token = await asyncio.gather(
        *(pg.schedule_revisions_async(held, schedule_id=sid) for sid in asked),
        pg.schedule_revisions_async(held, ScheduleFilter(owner="ann")),
        pg.get_token_async("none"),
        return_exceptions=True,
    )
    assert pg._batches.rounds - rounds == 1  # the ids read again within the round
    for sid, got in zip(asked, by_id, strict=True):
        if sid == bad_id:
            assert type(got) is ValidationError, got
            assert str(got) == str(alone.value)
        elif sid == "missing":
            assert got == []
        else:
            assert got == [(sid, held[sid], None)], (sid, got)
    assert [sid for sid, _, _ in page] == ["s1"]
    assert token is None

    # The connection is kept, sound: the next round reads on it.
    assert await pg._batches.fetch("SELECT pg_backend_pid()", ()) == [(pid,)]
    assert pg._async_reads._open == 1


async def test_a_connection_broken_while_the_ids_are_read_alone_reads_each_once(
    pg: PostgresStore, pg_url: str
) -> None:
    """An id refused makes the ids be read one by one; the connection breaks on one of
    them: the ids answered before are not read again, the others are read on a new
    connection."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE reads (id text)")  # a killed statement's rows go too
        admin.execute("CREATE SEQUENCE kills")  # counts survive a killed statement
        admin.execute(
            "CREATE FUNCTION seen(sid text) RETURNS boolean LANGUAGE plpgsql AS $$"
            " BEGIN INSERT INTO reads VALUES (sid);"
            " IF sid = 's2' AND nextval('kills') = 1 THEN"
            " PERFORM pg_terminate_backend(pg_backend_pid()); END IF;"
            " RETURN true; END $$"
        )
    # The ids' statement of the store, reading rows that record their reads.
    batches = Batches(pg._async_reads, "SELECT id, seen(id) FROM unnest(%s::text[]) AS t(id)")
    await batches.fetch("SELECT 1", ())  # the connection the round starts on
    asked = ["s\x00", "s1", "s2", "s3"]
    bad, *good, after = await asyncio.gather(
        *(batches.by_id(sid) for sid in asked),
        batches.fetch("SELECT 2", ()),
        return_exceptions=True,
    )
    assert batches.rounds == 2
    assert isinstance(bad, ValidationError), bad
    assert good == [[("s1", True)], [("s2", True)], [("s3", True)]]
    assert after == [(2,)]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        reads = admin.execute("SELECT id, count(*) FROM reads GROUP BY id ORDER BY id").fetchall()
        kills = admin.execute("SELECT last_value FROM kills").fetchone()
    # s1 alone, before the break; s2 and s3 together, on the new connection.
    assert reads == [("s1", 1), ("s2", 1), ("s3", 1)]
    assert kills == (2,)


async def test_a_round_broken_after_a_refused_statement_answers_each_read_once(
    pg: PostgresStore, pg_url: str
) -> None:
    """The connection breaks mid-round: the statements answered before (the refused one
    too) are not made again; those after are made on a new connection."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        for name in ("bad_runs", "good_runs", "kills"):
            admin.execute(f"CREATE SEQUENCE {name}")  # counts survive a killed statement
    batches = pg._batches
    await batches.fetch("SELECT 1", ())  # the connection the round starts on
    rounds = batches.rounds
    bad, good, killer, after = await asyncio.gather(
        batches.fetch("SELECT nextval('bad_runs') / %s", (0,)),
        batches.fetch("SELECT nextval('good_runs')", ()),
        batches.fetch(
            "SELECT CASE WHEN nextval('kills') = 1 THEN pg_terminate_backend(pg_backend_pid()) END",
            (),
        ),
        batches.fetch("SELECT 2", ()),
        return_exceptions=True,
    )
    assert batches.rounds - rounds == 1
    assert isinstance(bad, ValidationError), bad
    assert good == [(1,)]
    assert killer == [(None,)]  # made again: the second time, it kills nothing
    assert after == [(2,)]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        counts = admin.execute(
            "SELECT (SELECT last_value FROM bad_runs), (SELECT last_value FROM good_runs),"
            " (SELECT last_value FROM kills)"
        ).fetchone()
    assert counts == (1, 1, 2)
