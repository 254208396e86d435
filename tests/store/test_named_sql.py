"""Named SQL: the blocks of ``queries/*.sql`` and their dialect variants."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path
from typing import Final

import pytest

import tickwork.store
from tickwork.store import open_store
from tickwork.store.codec import CLAIMED_RUN_COLUMNS, RUN_COLUMNS
from tickwork.store.dialect import statements
from tickwork.store.named_sql import (
    all_of,
    all_queries,
    fill,
    parse_queries,
    queries_for,
    union_all,
    values_rows,
    where,
)
from tickwork.store.sqlite_bulk import _UPDATE_WIDTH


def test_blocks_are_named_and_comments_left_out() -> None:
    text = "-- the file\n-- name: a\n-- says why\nSELECT 1\n\n-- name: a@postgres\nSELECT 2\n"
    assert parse_queries(text) == {"a": "SELECT 1", "a@postgres": "SELECT 2"}
    with pytest.raises(ValueError, match="repeated"):
        parse_queries("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError, match="empty"):
        parse_queries("-- name: a\n-- nothing\n")


def test_each_dialect_runs_its_own_variant_or_the_shared_text() -> None:
    shared = {name for name in all_queries() if "@" not in name}
    own = {
        dialect: {n.partition("@")[0] for n in all_queries() if n.endswith("@" + dialect)}
        for dialect in ("sqlite", "postgres")
    }
    sqlite, postgres = queries_for("sqlite"), queries_for("postgres")
    assert set(sqlite) == shared | own["sqlite"]
    assert set(postgres) == shared | own["postgres"]
    assert "read_events" in own["sqlite"] and "read_events" in own["postgres"]
    assert "store_fired" in shared and "store_fired" in own["sqlite"]
    assert "SKIP LOCKED" in postgres["claim_candidates"]
    assert "SKIP LOCKED" not in sqlite["claim_candidates"]
    assert "json_each" in sqlite["claim_candidates"]


STORE = Path(tickwork.store.__file__).parent


#: The calls whose first argument names a statement (``_update_rows``: its second).
_RUNNERS: Final = {"_sql", "shared_statement", "_many", "_raw", "_update_rows"}


def _names_run_in_python() -> set[str]:
    """Every literal given to a call of ``_RUNNERS`` or taken from ``all_queries()``
    or ``statements(...)`` in the store's modules."""
    found: set[str] = set()
    for path in STORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                arg = node.args[0]
                if called == "_update_rows" and len(node.args) > 1:
                    arg = node.args[1]
                if called in _RUNNERS and isinstance(arg, ast.Constant):
                    found.add(str(arg.value))
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and re.search(r"all_queries\(|statements\(|^_Q$", ast.unparse(node.value))
            ):
                found.add(str(node.slice.value))
    return found


def _string_literals() -> set[str]:
    return {
        str(node.value)
        for path in STORE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_named_statement_is_used_and_every_name_used_exists() -> None:
    names = {name.partition("@")[0] for name in all_queries()}
    used = _names_run_in_python()
    assert len(used) > 100, sorted(used)
    assert not sorted(used - names), "names run that no queries/*.sql defines"
    literals = _string_literals()
    assert not sorted(names - literals), "named statements that no module runs"


def test_no_statement_is_built_in_python_outside_the_named_sql() -> None:
    """A statement's text lives in ``queries/``: no module of the store holds SQL of
    its own (transaction control, PRAGMA, SET and LISTEN, which are no statements of
    the data, aside)."""
    modules = list(STORE.glob("*.py"))
    statement = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s")
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not statement.match(node.value), (path.name, node.value[:60])
            if isinstance(node, ast.JoinedStr):
                text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
                assert not statement.match(text), (path.name, text[:60])


def test_fill_puts_each_slot_once_and_refuses_a_missing_one() -> None:
    assert fill("SELECT a FROM t{where} LIMIT ?", where=where(["a = ?", "b = ?"])) == (
        "SELECT a FROM t WHERE a = ? AND b = ? LIMIT ?"
    )
    assert fill("SELECT a FROM t{where}", where=where([])) == "SELECT a FROM t"
    assert fill("SELECT a FROM t WHERE {where}", where=all_of([])) == (
        "SELECT a FROM t WHERE 1 = 1"
    )
    with pytest.raises(ValueError, match="slot"):
        fill("SELECT a FROM t", where="")
    with pytest.raises(ValueError, match="slot"):
        fill("SELECT {x} FROM {x}", x="a")
    assert values_rows(2, 3) == "(?, ?), (?, ?), (?, ?)"
    assert union_all("SELECT 1", 3) == "SELECT 1 UNION ALL SELECT 1 UNION ALL SELECT 1"


#: What each slot is filled with to check that a statement prepares.
_SLOTS = {"order": "id", "assignments": "name = ?", "columns": "1", "select": "SELECT 1"}
#: The width of a row of each multi-row statement (slot ``values``), as SQLite's bulk
#: writes fill it.
_ROW_WIDTH = {
    "bulk_insert_runs": len(RUN_COLUMNS),
    "bulk_insert_claimed_runs": len(CLAIMED_RUN_COLUMNS),
    "bulk_insert_first_attempts": 1,
    **_UPDATE_WIDTH,
}


def _prepared_text(name: str, sql: str) -> str:
    """A named statement with its slots filled by the smallest valid text."""
    for slot in re.findall(r"\{(\w+)\}", sql):
        if slot == "where":
            text = "1 = 1" if "WHERE {where}" in sql else ""
        elif slot == "values":
            text = values_rows(_ROW_WIDTH[name], 2)
        else:
            text = _SLOTS[slot]
        sql = fill(sql, **{slot: text})
    return sql


def _parameters(sql: str) -> int:
    """How many parameters a SQLite statement takes: each plain ``?`` one more, each
    numbered ``?N`` once."""
    numbered = set(re.findall(r"\?(\d+)", sql))
    return len(re.findall(r"\?(?!\d)", sql)) + len(numbered)


def test_every_statement_prepares_on_sqlite(sqlite_url: str) -> None:
    open_store(sqlite_url).close()  # the schema, migrated
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        for name, sql in statements("sqlite").items():
            text = _prepared_text(name, sql)
            try:
                conn.execute(f"EXPLAIN QUERY PLAN {text}", [None] * _parameters(text))
            except sqlite3.Error as exc:  # pragma: no cover - the failure's message
                pytest.fail(f"{name}: {exc}\n{text}")


@pytest.mark.postgres
def test_every_statement_prepares_on_postgres(pg_url: str) -> None:
    import psycopg

    open_store(pg_url).close()
    dml = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s", re.IGNORECASE)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name, sql in statements("postgres").items():
            if not dml.match(sql):
                continue  # LOCK, CREATE: not preparable, run by every test that needs them
            pieces = _prepared_text(name, sql).split("?")
            text = pieces[0] + "".join(f"${i}{p}" for i, p in enumerate(pieces[1:], 1))
            try:
                conn.execute(f"PREPARE named_check AS {text}")
                conn.execute("DEALLOCATE named_check")
            except psycopg.Error as exc:  # pragma: no cover - the failure's message
                pytest.fail(f"{name}: {exc}\n{text}")
