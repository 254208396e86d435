"""Database URLs: accepted forms, options, refusals, and passwords never shown."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tickwork.errors import StoreUnavailableError, ValidationError
from tickwork.store import open_store
from tickwork.store.url import PostgresURL, SQLiteURL, make_store, mask_password, parse_url


def test_sqlite_paths() -> None:
    rel = parse_url("sqlite:///tickwork.db")
    assert isinstance(rel, SQLiteURL) and rel.path == "tickwork.db"
    assert rel.synchronous == "NORMAL" and rel.busy_timeout == 10.0
    nested = parse_url("sqlite:///data/sub/t.db")
    assert isinstance(nested, SQLiteURL) and nested.path == "data/sub/t.db"
    absolute = parse_url("sqlite:////var/lib/t.db?synchronous=full&busy_timeout=2.5")
    assert isinstance(absolute, SQLiteURL) and absolute.path == "/var/lib/t.db"
    assert absolute.synchronous == "FULL" and absolute.busy_timeout == 2.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite://", "no database file"),
        ("sqlite://host/t.db", "no host"),
        ("sqlite:///t.db?synchronous=sometimes", "synchronous"),
        ("sqlite:///t.db?busy_timeout=soon", "busy_timeout"),
        ("sqlite:///t.db?colour=blue", "unknown option"),
        ("mysql://u:pw@h/db", "unknown scheme 'mysql'"),
        ("tickwork.db", "expected sqlite:///path"),
        ("postgresql://u@h:notaport/db", "invalid database URL"),
        ("postgresql://u@h/db?pool_min=5&pool_max=2", "pool_min"),
        ("postgresql://u@h/db?bogus=1", "bogus"),
    ],
)
def test_malformed_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        parse_url(url)
    assert info.value.field == "url"


def test_postgres_forms() -> None:
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        parsed = parse_url(f"{scheme}://bob:s3cret@db.example:6543/app?pool_max=4")
        assert isinstance(parsed, PostgresURL)
        assert parsed.conninfo.startswith("postgresql://bob:s3cret@db.example:6543/app?")
        assert "connect_timeout=5" in parsed.conninfo and "pool_max" not in parsed.conninfo
        assert parsed.pool_max == 4
        assert parsed.display == f"{scheme}://bob:***@db.example:6543/app?pool_max=4"
        assert "s3cret" not in repr(parsed)


def test_passwords_are_masked_everywhere(tmp_path: Path) -> None:
    assert mask_password("postgresql://bob:pw@h/db") == "postgresql://bob:***@h/db"
    assert mask_password("postgresql://bob@h/db") == "postgresql://bob@h/db"
    assert mask_password("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ValidationError) as info:
        parse_url("postgresql://bob:hunter2@h:99999/db")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
    store = make_store("postgresql://bob:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in repr(store) and "hunter2" not in store.url


def test_a_password_given_as_a_query_parameter_is_masked_too() -> None:
    url = "postgresql://bob@127.0.0.1:1/db?sslmode=disable&password=hunter2&connect_timeout=2"
    assert mask_password(url) == (
        "postgresql://bob@127.0.0.1:1/db?sslmode=disable&password=***&connect_timeout=2"
    )
    assert mask_password("postgresql://bob:pw@h/db?password=hunter2") == (
        "postgresql://bob:***@h/db?password=***"
    )
    assert "hunter2" not in make_store(url).url
    with pytest.raises(StoreUnavailableError) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


@pytest.mark.postgres
def test_libpq_options_reach_the_server_as_written(pg_url: str) -> None:
    """libpq decodes %XX in a URL's query and keeps a + as it is: the URL tickwork
    connects with must keep both (before, %20 came out as a + and the server refused
    the setting "+statement_timeout")."""
    url = f"{pg_url}?options=-c%20statement_timeout%3D1234&application_name=night+batch"
    open_store(url).close()
    parsed = parse_url(url)
    assert isinstance(parsed, PostgresURL)
    with psycopg.connect(parsed.conninfo) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
        assert conn.execute("SHOW application_name").fetchone() == ("night+batch",)


def test_unreachable_postgres_is_a_clear_store_unavailable_error() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_store("postgresql://bob:hunter2@127.0.0.1:1/db?connect_timeout=2")
    text = str(info.value)
    assert "127.0.0.1" in text and "hunter2" not in text and "***" in text


def test_unopenable_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="missing"):
        open_store(f"sqlite:///{tmp_path}/missing/dir/t.db")


def test_relative_sqlite_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///rel.db")
    try:
        assert (tmp_path / "rel.db").exists()
        assert store.url == "sqlite:///rel.db" and repr(store) == "SQLiteStore('sqlite:///rel.db')"
    finally:
        store.close()
