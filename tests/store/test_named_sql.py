"""Named SQL: the blocks of ``queries/*.sql`` and their dialect variants."""

from __future__ import annotations

import pytest

from tickwork.store.named_sql import all_queries, parse_queries, queries_for


def test_blocks_are_named_and_comments_left_out() -> None:
    text = "-- the file\n-- name: a\n-- says why\nSELECT 1\n\n-- name: a@postgres\nSELECT 2\n"
    assert parse_queries(text) == {"a": "SELECT 1", "a@postgres": "SELECT 2"}
    with pytest.raises(ValueError, match="repeated"):
        parse_queries("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError, match="empty"):
        parse_queries("-- name: a\n-- nothing\n")


def test_each_dialect_runs_its_own_variant_or_the_shared_text() -> None:
    names = {name.partition("@")[0] for name in all_queries()}
    sqlite, postgres = queries_for("sqlite"), queries_for("postgres")
    assert set(sqlite) == set(postgres) == names
    assert "SKIP LOCKED" in postgres["claim_candidates"]
    assert "SKIP LOCKED" not in sqlite["claim_candidates"]
    assert "json_each" in sqlite["claim_candidates"]
