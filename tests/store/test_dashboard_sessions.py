"""The dashboard's sign-ins in the store, on SQLite and PostgreSQL: kept by the hash of
their secret, read with their API token's revocation, deleted at sign-out, and gone
once expired; and the migration that adds them to a database of before."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tickwork.models import ApiToken, DashboardSession
from tickwork.store import Store

from .conftest import T0, at, open_at_version


def session(session_id: str, **fields: object) -> DashboardSession:
    made = DashboardSession(
        id=session_id, user="ann", via="token", created_at=T0, expires_at=at(3600)
    )
    return dataclasses.replace(made, **fields)  # type: ignore[arg-type]


def test_a_sign_in_is_kept_by_hash_and_deleted_at_sign_out(store: Store) -> None:
    store.create_token(ApiToken(id="t1", user="ann", created_at=T0), "token-hash", None)
    store.create_session(session("s1", token_id="t1", read_only=True), "hash-1", T0)
    store.create_session(
        session("s2", user="admin", via="admin", admin=True, credential_hash="c"), "hash-2", T0
    )
    found = store.get_session("s1")
    assert found is not None
    first, stored_hash = found
    assert stored_hash == "hash-1"
    assert (first.user, first.via, first.token_id, first.read_only, first.admin) == (
        "ann",
        "token",
        "t1",
        True,
        False,
    )
    assert (first.created_at, first.expires_at, first.token_revoked_at) == (T0, at(3600), None)
    assert first.usable(at(3599)) and not first.usable(at(3600))
    second = store.get_session("s2")
    assert second is not None and second[0].credential_hash == "c" and second[0].admin

    store.delete_session("s1")
    assert store.get_session("s1") is None
    store.delete_session("s1")  # signing out twice changes nothing
    assert store.get_session("s2") is not None  # another sign-in stays


def test_a_sign_in_is_read_with_its_tokens_revocation(store: Store) -> None:
    store.create_token(ApiToken(id="t1", user="ann", created_at=T0), "token-hash", None)
    store.create_session(session("s1", token_id="t1"), "hash-1", T0)
    store.revoke_token("t1", at(10), None)
    found = store.get_session("s1")
    assert found is not None
    assert found[0].token_revoked_at == at(10) and not found[0].usable(at(11))


def test_expired_sign_ins_are_deleted_by_the_next_sign_in(store: Store) -> None:
    store.create_session(session("old", expires_at=at(60)), "h", T0)
    store.create_session(session("later", expires_at=at(600)), "h", T0)
    store.create_session(session("new", created_at=at(60), expires_at=at(120)), "h", at(60))
    assert store.get_session("old") is None  # expired at 60: kept no longer
    assert store.get_session("later") is not None
    assert store.get_session("new") is not None


@pytest.mark.empty_database
def test_upgrade_adds_sign_ins_to_a_database_of_before(db_url: str) -> None:
    """Migration 0020 adds the sign-ins table to a database with tokens already in it."""
    old = open_at_version(db_url, 19)
    try:
        old.create_token(ApiToken(id="t1", user="ann", created_at=T0), "token-hash", None)
        assert old.upgrade()[0] == 20
        old.create_session(session("s1", token_id="t1", expires_at=T0 + timedelta(days=7)), "h", T0)
        found = old.get_session("s1")
        assert found is not None and found[0].token_id == "t1" and found[0].usable(at(1))
    finally:
        old.close()
