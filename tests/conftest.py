"""Fixtures shared by every test layer: database URLs for SQLite and PostgreSQL.

PostgreSQL tests use a real server at ``TICKWORK_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets a fresh database: a copy
of one this test process migrated once (``migrated_template``), or an empty one for a
test marked ``empty_database``. Without a server they skip with the reason, unless
``TICKWORK_REQUIRE_PG=1`` (set by ``.ci/run``), which turns that skip into a failure.
"""

from __future__ import annotations

import compileall
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import settings

# In CI the property tests replay a fixed sequence of examples (derandomized), so a
# run is reproducible; on a developer's machine they explore new examples each run.
# TICKWORK_HYPOTHESIS_PROFILE=ci or =explore (random examples, no example database)
# picks one explicitly, e.g. to run CI's checks with fresh random examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
_PROFILE = os.environ.get("TICKWORK_HYPOTHESIS_PROFILE")
if _PROFILE:
    settings.load_profile(_PROFILE)
elif os.environ.get("TICKWORK_REQUIRE_PG") == "1" or os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("TICKWORK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("TICKWORK_REQUIRE_PG") == "1"


def _pg_admin_connect() -> object:
    import psycopg

    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)


def pg_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        conn = _pg_admin_connect()
    except Exception as exc:  # any failure means: no server for these tests
        return f"PostgreSQL not reachable at {PG_URL}: {exc}"
    conn.close()  # type: ignore[attr-defined]
    return None


def require_pg() -> None:
    reason = pg_available()
    if reason is None:
        return
    if REQUIRE_PG:
        pytest.fail(f"TICKWORK_REQUIRE_PG=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tickwork.db'}"


def _pg_database_url(name: str) -> str:
    return urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))


def _drop_pg_database(admin: Any, name: str) -> None:
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


#: This test process's migrated template (see ``migrated_template``), once made.
_template: str | None = None


def migrated_template() -> str:
    """A database with tickwork's schema, made once per test process: each test's
    database is a copy of it (about 0.05 s), where migrating a fresh one costs each test
    about 0.4 s. Its tables are empty; nothing connects to it after it is built (a
    template in use cannot be copied)."""
    global _template
    if _template is None:
        from tickwork.store import open_store

        name = f"tw_tmpl_{uuid.uuid4().hex[:12]}"
        admin: Any = _pg_admin_connect()
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
            open_store(_pg_database_url(name)).close()
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        finally:
            admin.close()
        _template = name
    return _template


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _template is not None:
        admin: Any = _pg_admin_connect()
        try:
            _drop_pg_database(admin, _template)
        finally:
            admin.close()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards: a copy of
    ``migrated_template`` (tickwork's schema, no rows), or an empty one for a test
    marked ``empty_database`` (one that builds the schema itself)."""
    require_pg()
    name = f"tw_test_{uuid.uuid4().hex[:12]}"
    empty = request.node.get_closest_marker("empty_database") is not None
    template = "" if empty else f' TEMPLATE "{migrated_template()}"'
    admin: Any = _pg_admin_connect()
    admin.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _pg_database_url(name)
    finally:
        _drop_pg_database(admin, name)
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickwork.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep a report's captured output to text UTF-8 can carry: the poison tests log lone
    surrogates, and pytest-xdist sends each report to the controller as UTF-8 (a
    surrogate there stops the worker and loses the rest of its tests)."""
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
        for title, text in report.sections
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the project's modules once, before any test starts a process. Where
    PYTHONDONTWRITEBYTECODE is set, Python never saves what it compiles, so each of the
    hundreds of ``tickwork`` processes the tests start would compile again every module
    of tickwork it imports (about 0.1 s of CPU a process); compiled here, they read it."""
    if not sys.dont_write_bytecode:
        return  # Python saves it itself, at the first import
    for name in ("src", "tests", "benchmarks", "examples"):
        if (ROOT / name).is_dir():
            compileall.compile_dir(ROOT / name, quiet=1)
