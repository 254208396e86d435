"""A user's page of schedules (``WHERE owner = ? ORDER BY id LIMIT n``, as the REST API
lists them for a caller who is not an admin) is read from an index in id order: the
owner's schedules are not all read and sorted for each page."""

from __future__ import annotations

import sqlite3

from tickwork.store.base import Store
from tickwork.store.postgres import _pg
from tickwork.store.records import ScheduleFilter

from .conftest import make_schedule


def _plan(store: Store, db_url: str, sql: str, params: list[object]) -> str:
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return "\n".join(str(r[-1]) for r in rows)
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as pg:
        pg.execute("ANALYZE schedules")
        rows = pg.execute(("EXPLAIN " + _pg(sql)).encode(), params).fetchall()
    return "\n".join(str(r[0]) for r in rows)


def test_a_users_page_is_read_in_id_order_from_an_index(store: Store, db_url: str) -> None:
    for k in range(1000):  # ann's: one in 50, spread over the id order
        store.add_schedule(make_schedule(f"s{k:04d}", owner="ann" if k % 50 == 0 else "bob"))
    filters = ScheduleFilter(owner="ann", limit=11)
    sql, params = store._revisions_query(filters)  # type: ignore[attr-defined]
    plan = _plan(store, db_url, sql, params)
    assert "schedules_owner_id" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    page = store.schedule_revisions({}, filters)
    assert [sid for sid, _, _ in page] == [f"s{k:04d}" for k in range(0, 550, 50)]
