"""The runs of a deleted schedule stay its owner's (both databases).

Run reads scoped to an owner went through the ``schedules`` row, gone with the
schedule: the owner lost sight of their own history. The delete records whose the
schedule was; a run belongs to the owner the schedule had when the run was made, so an
id deleted and taken again by another user splits its history between them.
"""

from __future__ import annotations

from tickwork.store import Store

from .conftest import at, make_run, make_schedule


def _ids(store: Store, owner: str, **filters: object) -> set[str]:
    return {r.id for r in store.list_runs(owner=owner, **filters)}  # type: ignore[arg-type]


def test_the_owner_keeps_the_runs_of_a_deleted_schedule(store: Store) -> None:
    mine = store.add_schedule(make_schedule("x", owner="alice"))
    theirs = store.add_schedule(make_schedule("y", owner="bob"))
    old = [make_run(mine, at(k)) for k in range(3)]
    other = make_run(theirs, at(1))
    store.insert_runs([*old, other])
    assert store.delete_schedule("x", at(10)) is not None

    assert _ids(store, "alice") == {r.id for r in old}
    assert _ids(store, "alice", schedule_id="x") == {r.id for r in old}
    assert _ids(store, "bob") == {other.id}
    assert _ids(store, "bob", schedule_id="x") == set()
    assert store.get_run(old[0].id, owner="alice") is not None
    assert store.get_run(old[0].id, owner="bob") is None
    assert store.get_run(other.id, owner="alice") is None
    assert store.count_runs(at(20), owner="alice")["cancelled"] == 3  # by the delete
    assert store.count_runs(at(20), owner="bob")["cancelled"] == 0
    assert [s.task for s in store.task_stats(owner="alice")] == ["t"]
    assert store.recent_runs(["x"], 5, owner="bob") == {"x": []}


def test_an_id_taken_again_by_another_user_splits_its_history(store: Store) -> None:
    first = store.add_schedule(make_schedule("x", owner="alice"))
    alices = make_run(first, at(1))
    store.insert_runs([alices])
    store.delete_schedule("x", at(10))
    again = store.add_schedule(make_schedule("x", owner="bob", created_at=at(20)))
    bobs = make_run(again, at(30))
    store.insert_runs([bobs])

    assert _ids(store, "alice") == _ids(store, "alice", schedule_id="x") == {alices.id}
    assert _ids(store, "bob") == _ids(store, "bob", schedule_id="x") == {bobs.id}
    assert store.get_run(alices.id, owner="bob") is None
    assert store.get_run(bobs.id, owner="alice") is None
    assert [i for i, _, _ in store.recent_runs(["x"], 5, owner="bob")["x"]] == [bobs.id]

    # Deleted again, by bob: each keeps their own part, a third user sees none.
    store.delete_schedule("x", at(40))
    assert _ids(store, "alice") == {alices.id}
    assert _ids(store, "bob") == {bobs.id}
    assert _ids(store, "carol") == set()
    # A run made a moment after the deletion's instant by a node whose clock runs ahead
    # is still the last owner's when the id is free.
    late = make_run(None, at(41), created_at=at(41)).replace(schedule_id="x", task="t")
    store.insert_runs([late])
    assert _ids(store, "bob") == {bobs.id, late.id}


def test_retention_forgets_a_deletion_once_its_runs_are_gone(store: Store) -> None:
    s = store.add_schedule(make_schedule("x", owner="alice"))
    run = make_run(s, at(1), status="succeeded", finished_at=at(2))
    store.insert_runs([run])
    store.delete_schedule("x", at(10))
    assert _ids(store, "alice") == {run.id}
    store.delete_runs_before(at(5))  # the run is gone, and so is what split the id
    assert _ids(store, "alice") == set()
    # Taken again by bob: nothing of alice's is left, so every run of the id is his.
    again = store.add_schedule(make_schedule("x", owner="bob", created_at=at(20)))
    early = make_run(again, at(0.5), created_at=at(0.5))  # a backfill, made by a slow clock
    store.insert_runs([early])
    assert _ids(store, "bob") == {early.id}
