"""What the REST API keeps in the store, on SQLite and PostgreSQL: API tokens (hashed),
the audit log written in the change's own transaction, idempotency keys of manual runs,
a schedule's settings ``version`` with its check, and the version each run came from."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from tickwork.errors import ConflictError, NotFoundError, PreconditionFailedError
from tickwork.models import ApiToken, AuditEntry, Schedule
from tickwork.store import Store
from tickwork.store.base import ClaimRequest

from .conftest import T0, at, every_second, make_run, make_schedule


def audit(action: str, target: str, **fields: object) -> AuditEntry:
    return AuditEntry(actor="alice", action=action, target=target, at=T0, **fields)  # type: ignore[arg-type]


def next_second(s: Schedule, now: datetime) -> datetime:
    return now + timedelta(seconds=1)


def test_changes_write_their_audit_entry_in_the_same_transaction(store: Store) -> None:
    s = store.add_schedule(make_schedule("a"), audit("schedule.created", "schedule:a", after={}))
    updated = store.update_schedule(
        s.replace(name="renamed"), audit("schedule.updated", "schedule:a", before=s.to_dict())
    )
    assert updated.version == 2 and s.version == 1
    paused = store.set_paused(["a"], True, at(1), next_second, audit("schedule.paused", "*"))
    assert paused[0].version == 3 and store.get_schedule("a").version == 3  # type: ignore[union-attr]
    run = make_run(updated, at(2))
    store.insert_runs([run], audit("schedule.run", "schedule:a"))
    store.cancel_run(run.id, at(3), audit("run.cancelled", f"run:{run.id}"))
    assert store.delete_schedule("a", at(4), audit("schedule.deleted", "schedule:a")) is not None
    entries = store.list_audit(limit=100)
    assert [e.action for e in entries] == [
        "schedule.deleted",
        "run.cancelled",
        "schedule.run",
        "schedule.paused",
        "schedule.updated",
        "schedule.created",
    ]
    deleted, cancelled, ran, paused_entry, changed, _ = entries
    assert deleted.before["name"] == "renamed" and deleted.after is None  # type: ignore[index]
    assert cancelled.before == {"status": "pending"} and cancelled.after["status"] == "cancelled"  # type: ignore[index]
    assert ran.after == {"runs": [run.id]}
    assert paused_entry.target == "schedule:a"
    assert paused_entry.before["paused"] is False and paused_entry.after["paused"] is True  # type: ignore[index]
    assert changed.before["name"] == "" and changed.after["name"] == "renamed"  # type: ignore[index]
    assert all(e.actor == "alice" and e.at == T0 for e in entries)
    # Paging newest first by id; filters.
    ids = [e.id for e in entries]
    assert ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    page = store.list_audit(before_id=ids[2], limit=2)
    assert [e.id for e in page] == ids[3:5]
    assert [e.action for e in store.list_audit(target="a")] == [
        "schedule.deleted",
        "schedule.run",
        "schedule.paused",
        "schedule.updated",
        "schedule.created",
    ]
    assert store.list_audit(actor="bob") == []


def test_cancelling_a_run_still_stopping_again_changes_and_records_nothing(
    store: Store,
) -> None:
    """A second cancel of a running run its node has not stopped yet answers as the
    first did, and is not audited as a cancel of its own."""
    store.insert_runs([make_run(None, T0)])
    (running,) = store.claim_runs("n1", at(1), at(60), 1, ("t",), {})
    first = store.cancel_run(running.id, at(2), audit("run.cancelled", f"run:{running.id}"))
    assert (first.status, first.cancel_requested) == ("running", True)
    events = store.last_event_id()
    again = store.cancel_run(running.id, at(3), audit("run.cancelled", f"run:{running.id}"))
    assert again == first
    assert [e.action for e in store.list_audit(limit=10)] == ["run.cancelled"]
    assert store.last_event_id() == events


def test_a_failed_change_writes_no_audit_entry(store: Store) -> None:
    store.add_schedule(make_schedule("a"))
    with pytest.raises(ConflictError):
        store.add_schedule(make_schedule("a"), audit("schedule.created", "schedule:a"))
    with pytest.raises(PreconditionFailedError):
        store.update_schedule(
            make_schedule("a", name="x"), audit("schedule.updated", "schedule:a"), 7
        )
    with pytest.raises(PreconditionFailedError):
        store.delete_schedule("a", at(1), audit("schedule.deleted", "schedule:a"), 7)
    with pytest.raises(PreconditionFailedError):
        store.set_paused(["a"], True, at(1), next_second, audit("schedule.paused", "*"), 7)
    assert store.get_schedule("a").name == ""  # type: ignore[union-attr]
    assert store.get_schedule("a").paused is False  # type: ignore[union-attr]
    assert store.list_audit() == []
    assert store.update_schedule(make_schedule("a", name="x"), None, 1).version == 2
    (paused,) = store.set_paused(["a"], True, at(2), next_second, None, 2)
    assert paused.version == 3
    # Already paused: nothing to change, but the condition is still checked first.
    with pytest.raises(PreconditionFailedError):
        store.set_paused(["a"], True, at(3), next_second, None, 2)
    assert store.set_paused(["a"], True, at(3), next_second, None, 3) == []


def test_fired_and_claimed_runs_record_the_schedule_version(store: Store) -> None:
    s = store.add_schedule(make_schedule("a", overlap="allow", max_instances=10))
    store.update_schedule(s.replace(name="v2"))
    store.add_schedule(make_schedule("b", overlap="allow", max_instances=10))
    fired = store.fire_due(at(0.5), every_second(), 100)
    assert {r.schedule_id: r.schedule_version for r in fired} == {"a": 2, "b": 1}
    assert {store.get_run(r.id).schedule_version for r in fired} == {1, 2}  # type: ignore[union-attr]
    store.update_schedule(store.get_schedule("b").replace(name="v2"))  # type: ignore[union-attr]
    # Those runs taken, the next fire's runs are claimed in the fire's transaction.
    assert len(store.claim_runs("n1", at(1), at(60), 100, ("t",), {})) == 2
    result = store.fire_and_claim(
        at(1.5), every_second(), 100, ClaimRequest("n1", at(60), 100, ("t",), {})
    )
    assert result.claimed and {r.schedule_version for r in result.claimed} == {2}
    assert {store.get_run(r.id).schedule_version for r in result.claimed} == {2}  # type: ignore[union-attr]
    # A fire does not change the version: an editor's If-Match still holds.
    assert store.get_schedule("a").version == 2  # type: ignore[union-attr]


def test_tokens_are_stored_by_hash_and_revoked_at_once(store: Store) -> None:
    token = ApiToken(id="abc", user="alice", created_at=T0, read_only=True, expires_at=at(60))
    store.create_token(token, "hash-1", audit("token.created", "token:abc"))
    found = store.get_token("abc")
    assert found is not None and found[1] == "hash-1"
    assert found[0] == token and found[0].role == "read-only"
    assert not store.create_first_token(
        ApiToken(id="first", user="admin", created_at=T0, admin=True), "hash-2", None
    )
    store.touch_token("abc", at(5))
    assert store.get_token("abc")[0].last_used_at == at(5)  # type: ignore[index]
    revoked = store.revoke_token("abc", at(10), audit("token.revoked", "token:abc"))
    assert revoked.revoked_at == at(10) and not revoked.usable(at(11))
    assert store.list_tokens() == [] and len(store.list_tokens(include_revoked=True)) == 1
    with pytest.raises(ConflictError):
        store.revoke_token("abc", at(11), None)
    with pytest.raises(NotFoundError):
        store.revoke_token("nope", at(11), None)
    assert [e.action for e in store.list_audit()] == ["token.revoked", "token.created"]
    assert "hash" not in repr(store.list_audit())


def test_the_first_token_is_made_once(store: Store) -> None:
    first = ApiToken(id="first", user="admin", created_at=T0, admin=True)
    assert store.create_first_token(first, "h1", None)
    assert not store.create_first_token(dataclasses.replace(first, id="second"), "h2", None)
    assert [t.id for t in store.list_tokens()] == ["first"]


def test_an_idempotency_key_returns_the_first_run(store: Store) -> None:
    s = store.add_schedule(make_schedule("a"))
    other = store.add_schedule(make_schedule("b"))
    first = make_run(s, at(1))
    run, created = store.insert_run_once(s, first, ("alice", "k1"), at(1) - timedelta(hours=24))
    assert created and run.id == first.id
    again, created = store.insert_run_once(
        s, make_run(s, at(2)), ("alice", "k1"), at(2) - timedelta(hours=24)
    )
    assert not created and again.id == first.id
    # Another caller's key of the same name is theirs.
    _, created = store.insert_run_once(
        s, make_run(s, at(2)), ("bob", "k1"), at(2) - timedelta(hours=24)
    )
    assert created
    with pytest.raises(ConflictError, match="another schedule"):
        store.insert_run_once(
            other, make_run(other, at(3)), ("alice", "k1"), at(3) - timedelta(hours=24)
        )
    # After the window the key makes a new run.
    later = make_run(s, at(90_000))
    run, created = store.insert_run_once(
        s, later, ("alice", "k1"), at(90_000) - timedelta(hours=24)
    )
    assert created and run.id == later.id
    assert len(store.list_runs(schedule_id="a")) == 3


def test_retention_deletes_old_audit_entries(store: Store) -> None:
    store.record_audit(audit("schedule.created", "schedule:a"))
    store.record_audit(dataclasses.replace(audit("schedule.updated", "schedule:a"), at=at(100)))
    store.delete_runs_before(at(50))
    assert [e.action for e in store.list_audit()] == ["schedule.updated"]
