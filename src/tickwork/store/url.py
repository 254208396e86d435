"""Database URLs: which store a URL names, its options, and how to print it safely.

Accepted forms::

    sqlite:///relative/path.db          a file relative to the working directory
    sqlite:////absolute/path.db         an absolute path
    sqlite:///path.db?synchronous=full  options: synchronous (normal|full), busy_timeout (s)
    postgresql://user:pw@host:5432/db   also postgres:// and postgresql+psycopg://
    postgresql://…?pool_max=20          options: pool_min, pool_max, pool_timeout (s);
                                        every other query parameter goes to libpq
                                        (``TCP_DEFAULTS`` unless the URL sets them)

An in-memory SQLite database (``sqlite:///:memory:``) is refused: each connection would
see its own empty database, and tickwork uses several connections and processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from tickwork.errors import ValidationError
from tickwork.store.base import Store

SQLITE_SCHEMES = ("sqlite",)
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgres+psycopg")
#: libpq settings of every PostgreSQL connection, unless the URL sets them: a server
#: gone without a word (a network partition, a dead host) is noticed within about 20 s,
#: well inside the default lease (30 s), not when the kernel gives up minutes later.
TCP_DEFAULTS: Final = {
    "keepalives": "1",
    "keepalives_idle": "10",  # seconds of silence before the first probe
    "keepalives_interval": "3",  # seconds between probes
    "keepalives_count": "3",  # probes unanswered before the connection is dropped
    "tcp_user_timeout": "20000",  # milliseconds sent data may stay unacknowledged
}

#: libpq's query parameters that hold a secret: never printed.
SECRET_OPTIONS: Final = frozenset({"password", "sslpassword"})


def mask_password(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``; safe to print or log.
    libpq also takes secrets as query parameters (``?password=…``, ``?sslpassword=…``
    for the client key), with their names %-encoded or not: masked too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Too broken to parse: show no credentials at all.
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}" if "@" in rest else url
    if parts.query:
        pairs = parts.query.split("&")
        masked = [
            f"{name}=***" if unquote(name) in SECRET_OPTIONS else p
            for p in pairs
            for name in (p.partition("=")[0],)
        ]
        if masked != pairs:
            parts = parts._replace(query="&".join(masked))
            url = urlunsplit(parts)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _query_options(query: str) -> dict[str, str]:
    """A URL's query parameters, decoded as libpq decodes them: ``%XX`` escapes only (a
    ``+`` is a plus sign, not a space, unlike in an HTML form's query)."""
    options: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            options[unquote(name)] = unquote(value)
    return options


def _query(options: dict[str, str]) -> str:
    """``options`` as a query libpq reads back as they are (``%20`` for a space: libpq
    reads a ``+`` as a plus sign)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in options.items())


@dataclass(frozen=True)
class SQLiteURL:
    path: str
    display: str
    synchronous: str = "NORMAL"
    busy_timeout: float = 10.0


@dataclass(frozen=True)
class PostgresURL:
    conninfo: str = field(repr=False)
    display: str
    pool_min: int = 1
    pool_max: int = 16
    pool_timeout: float = 10.0


def _bad(url: str, why: str) -> ValidationError:
    return ValidationError(f"invalid database URL {mask_password(url)!r}: {why}", field="url")


def parse_url(url: str) -> SQLiteURL | PostgresURL:
    """Parse a database URL; raise ``ValidationError`` naming the (masked) URL when invalid."""
    if not isinstance(url, str) or "://" not in url:
        raise _bad(str(url), "expected sqlite:///path or postgresql://user@host/db")
    try:
        parts = urlsplit(url)
        _ = parts.port  # validates the port
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    scheme = parts.scheme.lower()
    options = _query_options(parts.query)
    display = mask_password(url)
    if scheme in SQLITE_SCHEMES:
        return _parse_sqlite(url, parts.netloc, parts.path, options, display)
    if scheme in POSTGRES_SCHEMES:
        return _parse_postgres(url, parts, options, display)
    known = ", ".join(f"{s}://" for s in (*SQLITE_SCHEMES, *POSTGRES_SCHEMES))
    raise _bad(url, f"unknown scheme {parts.scheme!r} (known: {known})")


def _parse_sqlite(
    url: str, netloc: str, path: str, options: dict[str, str], display: str
) -> SQLiteURL:
    if netloc:
        raise _bad(url, "a SQLite URL has no host: use sqlite:///relative.db or sqlite:////abs.db")
    path = unquote(path[1:] if path.startswith("/") else path)
    if not path:
        raise _bad(url, "no database file path")
    if path == ":memory:" or path.startswith("file::memory:") or "mode=memory" in path:
        raise _bad(
            url,
            "an in-memory SQLite database cannot be shared by tickwork's threads and "
            "processes; use a file (sqlite:///tickwork.db)",
        )
    synchronous = options.pop("synchronous", "normal").upper()
    if synchronous not in ("NORMAL", "FULL", "EXTRA"):
        raise _bad(url, f"synchronous must be normal, full or extra, not {synchronous.lower()!r}")
    busy = _float_option(url, options, "busy_timeout", 10.0)
    if options:
        raise _bad(url, f"unknown option(s) {', '.join(sorted(options))}")
    return SQLiteURL(path=path, display=display, synchronous=synchronous, busy_timeout=busy)


def _parse_postgres(
    url: str, parts: SplitResult, options: dict[str, str], display: str
) -> PostgresURL:
    pool_min = int(_float_option(url, options, "pool_min", 1))
    pool_max = int(_float_option(url, options, "pool_max", 16))
    pool_timeout = _float_option(url, options, "pool_timeout", 10.0)
    if pool_min < 1 or pool_max < pool_min:
        raise _bad(url, "need 1 <= pool_min <= pool_max")
    options.setdefault("connect_timeout", "5")
    for name, value in TCP_DEFAULTS.items():
        options.setdefault(name, value)
    # Not urlunsplit: it drops the "//" of a URL without a host (postgresql:///db, the
    # local socket), and libpq then reads the options as part of a host name.
    conninfo = f"postgresql://{parts.netloc}{parts.path}?{_query(options)}"
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - the [postgres] extra is missing
        raise _bad(url, "PostgreSQL support needs: pip install 'tickwork[postgres]'") from None
    try:
        conninfo_to_dict(conninfo)
    except Exception as exc:  # psycopg.ProgrammingError: libpq refused the URL
        why = str(exc).replace(parts.password or "\0", "***")
        for name in SECRET_OPTIONS:
            why = why.replace(options.get(name) or "\0", "***")
        raise _bad(url, why) from None
    return PostgresURL(
        conninfo=conninfo,
        display=display,
        pool_min=pool_min,
        pool_max=pool_max,
        pool_timeout=pool_timeout,
    )


def _float_option(url: str, options: dict[str, str], name: str, default: float) -> float:
    raw = options.pop(name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad(url, f"{name} must be a number, not {raw!r}") from None
    if value < 0:
        raise _bad(url, f"{name} must not be negative")
    return value


def make_store(url: str) -> Store:
    """The store a URL names, not yet opened."""
    parsed = parse_url(url)
    if isinstance(parsed, SQLiteURL):
        from tickwork.store.sqlite import SQLiteStore

        return SQLiteStore(parsed)
    from tickwork.store.postgres import PostgresStore

    return PostgresStore(parsed)


def open_store(url: str) -> Store:
    """Open the store a URL names: connect and apply pending migrations.

    Raises ``ValidationError`` for a malformed URL or unknown scheme and
    ``StoreUnavailableError`` when the database cannot be reached.
    """
    store = make_store(url)
    store.open()
    return store
