"""The queue messages of a deleted schedule stay its owner's (both databases).

Messages read by a user were found through the ``schedules`` row, gone with the
schedule: its owner lost their unread messages, and a user who took the id again once
its history was pruned read them. A message belongs, as a run does, to the owner its
schedule had when it was written; retention keeps whose a deleted schedule was while
a message of its id is unread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tickwork.models import AttemptOutcome, Schedule
from tickwork.store import Store, open_store
from tickwork.store.dialect import statements
from tickwork.store.owned_runs import owned_message_params

from .conftest import at, make_run, make_schedule


def _message(store: Store, schedule: Schedule, seconds: float) -> str:
    """A run of ``schedule`` made, claimed and ended at ``seconds``: one message on its
    result queue, written then. Its run's id."""
    run = make_run(schedule, at(seconds), created_at=at(seconds))
    store.insert_runs([run])
    (claimed,) = store.claim_runs("n1", at(seconds), at(seconds + 30), 1, ["t"], {})
    ok = AttemptOutcome("succeeded", result=seconds, finished_at=at(seconds))
    store.finish_attempts([(claimed.id, "n1", 1, ok)], at(seconds))
    return run.id


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan's nodes (EXPLAIN's JSON), its subplans' included."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _peek(store: Store, owner: str) -> list[str]:
    return [m.run_id for m in store.read_queue("q", consume=False, owner=owner)]


def test_the_owner_keeps_the_messages_of_a_deleted_schedule(store: Store) -> None:
    mine = store.add_schedule(make_schedule("x", owner="alice", result_queue="q"))
    theirs = store.add_schedule(make_schedule("y", owner="bob", result_queue="q"))
    first, second = _message(store, mine, 1), _message(store, mine, 2)
    other = _message(store, theirs, 3)
    assert store.delete_schedule("x", at(10)) is not None

    assert _peek(store, "alice") == [first, second]
    assert _peek(store, "bob") == [other]
    assert store.read_queue("q", owner="bob", limit=5)[0].run_id == other
    assert [m.run_id for m in store.read_queue("q", owner="alice", limit=1)] == [first]
    assert [m.run_id for m in store.read_queue("q", owner="alice")] == [second]
    assert store.read_queue("q") == []


def test_an_id_taken_again_by_another_user_splits_its_messages(store: Store) -> None:
    first = store.add_schedule(make_schedule("x", owner="alice", result_queue="q"))
    alices = _message(store, first, 1)
    store.delete_schedule("x", at(10))
    again = store.add_schedule(make_schedule("x", owner="bob", result_queue="q", created_at=at(20)))
    bobs = _message(store, again, 30)

    assert _peek(store, "alice") == [alices]
    assert _peek(store, "bob") == [bobs]
    assert _peek(store, "carol") == []
    # Consuming takes only the reader's own, on either side of the other's.
    assert [m.run_id for m in store.read_queue("q", owner="bob")] == [bobs]
    assert _peek(store, "alice") == [alices]
    store.delete_schedule("x", at(40))
    assert [m.run_id for m in store.read_queue("q", owner="alice")] == [alices]
    assert store.read_queue("q") == []


def test_retention_keeps_whose_an_id_was_while_its_messages_are_unread(store: Store) -> None:
    """Retention removes a deleted schedule's runs but never an unread message, and so
    keeps the record of whose it was: its messages stay its owner's, not those of
    whoever takes the id next. Once they are read, the record goes with the runs."""
    s = store.add_schedule(make_schedule("x", owner="alice", result_queue="q"))
    unread = _message(store, s, 1)
    store.delete_schedule("x", at(10))
    assert store.delete_runs_before(at(5)) == 1  # the run is gone, its message unread

    again = store.add_schedule(make_schedule("x", owner="bob", result_queue="q", created_at=at(20)))
    assert _peek(store, "bob") == []
    assert _peek(store, "alice") == [unread]
    bobs = _message(store, again, 30)
    assert _peek(store, "bob") == [bobs]

    assert [m.run_id for m in store.read_queue("q", owner="alice")] == [unread]
    assert [m.run_id for m in store.read_queue("q", owner="bob")] == [bobs]
    store.delete_runs_before(at(35))  # bob's run: nothing of the id is left to split
    early = make_run(again, at(0.5), created_at=at(0.5))  # a backfill, by a slow clock
    store.insert_runs([early])
    assert early.id in {r.id for r in store.list_runs(owner="bob")}


@pytest.mark.postgres
def test_a_page_of_a_users_queue_is_read_in_id_order_on_postgres(pg_url: str) -> None:
    """PostgreSQL reads a page of one user's messages along the queue's index and stops
    at the limit, as it did before deleted schedules counted: no sort of the whole
    queue, and a plan cheap enough that it is never compiled (JIT)."""
    open_store(pg_url).close()  # migrated
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schedules (id, task, schedule, owner, created_at, updated_at)"
            " SELECT 's' || i, 't', 'manual', CASE WHEN i % 2 = 0 THEN 'alice' ELSE 'bob' END,"
            " now(), now() FROM generate_series(1, 500) i"
        )
        conn.execute(
            "INSERT INTO deleted_schedules (schedule_id, owner, deleted_at)"
            " SELECT 'd' || i, 'alice', now() FROM generate_series(1, 20) i"
        )
        conn.execute(
            "INSERT INTO queue_messages (queue, run_id, schedule_id, kind, payload, created_at)"
            " SELECT 'q', 'r' || k, CASE WHEN k % 20 = 0 THEN 'd' || (k % 20 + 1)"
            " ELSE 's' || (k % 500 + 1) END, 'result', '{}', now() - interval '1 day'"
            " FROM generate_series(1, 100000) k"
        )
        conn.execute("ANALYZE")
        for name in ("peek_owned_queue", "consume_owned_queue"):
            sql = statements("postgres")[name].replace("?", "%s")
            for user in ("alice", "carol"):
                params = ("q", 0, *owned_message_params(user), 100)
                (plan,) = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()  # type: ignore[misc]
                sorts = [n["Sort Key"] for n in _nodes(plan[0]["Plan"]) if "Sort Key" in n]
                assert ["r.id"] not in sorts, (name, user, json.dumps(plan))
                assert plan[0]["Plan"]["Total Cost"] < 100_000, (name, user)  # jit_above_cost
