"""Named SQL: statements kept as text in ``queries/*.sql``, loaded once.

A file holds blocks that start with ``-- name: NAME``; the comment lines after it say
what the statement does and what its parameters are. A block named ``NAME@DIALECT``
is that dialect's own text of ``NAME`` (PostgreSQL's locks, SQLite's JSON lists):
``queries_for(dialect)[NAME]`` is the dialect's text when it has one, else the shared
one. Statements use ``?`` placeholders, as every statement of the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

_MARK = "-- name:"


def parse_queries(text: str, where: str = "<text>") -> dict[str, str]:
    """The named blocks of one file: name -> statement (comment lines left out)."""
    found: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []

    def close() -> None:
        if name is not None:
            statement = "\n".join(body).strip()
            if not statement:
                raise ValueError(f"{where}: query {name!r} is empty")
            found[name] = statement

    for line in text.splitlines():
        if line.startswith(_MARK):
            close()
            name, body = line[len(_MARK) :].strip(), []
            if not name or name in found:
                raise ValueError(f"{where}: query name {name!r} missing or repeated")
        elif name is not None and not line.lstrip().startswith("--"):
            body.append(line.rstrip())
    close()
    return found


@lru_cache(maxsize=1)
def all_queries() -> Mapping[str, str]:
    """Every named statement of the package, read once."""
    found: dict[str, str] = {}
    for entry in sorted(resources.files("tickwork.store").joinpath("queries").iterdir(), key=str):
        if entry.name.endswith(".sql"):
            for name, statement in parse_queries(entry.read_text("utf-8"), entry.name).items():
                if name in found:
                    raise ValueError(f"{entry.name}: query {name!r} is named twice")
                found[name] = statement
    return MappingProxyType(found)


@lru_cache(maxsize=4)
def queries_for(dialect: str) -> Mapping[str, str]:
    """The statements a dialect runs: its own variant of a name where it has one."""
    shared: dict[str, str] = {}
    own: dict[str, str] = {}
    for name, statement in all_queries().items():
        base, _, variant = name.partition("@")
        if not variant:
            shared[base] = statement
        elif variant == dialect:
            own[base] = statement
    return MappingProxyType({**shared, **own})


def fill(statement: str, **slots: str) -> str:
    """A named statement with its slots (``{where}``) filled by the text built for one
    call. Only what truly varies is built so (the conditions of the filters a caller
    gave, n rows of placeholders); the rest of the text stays as named."""
    for slot, text in slots.items():
        mark = "{" + slot + "}"
        if statement.count(mark) != 1:
            raise ValueError(f"the statement has no single slot {mark}: {statement[:60]!r}")
        statement = statement.replace(mark, text)
    return statement


def all_of(conditions: Sequence[str]) -> str:
    """The conditions joined by AND (``1 = 1`` for none): a ``{where}`` slot that
    follows a ``WHERE`` of its own."""
    return " AND ".join(conditions) if conditions else "1 = 1"


def where(conditions: Sequence[str]) -> str:
    """`` WHERE`` and the conditions joined by AND, or nothing for none: a ``{where}``
    slot that takes the whole clause."""
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def values_rows(width: int, rows: int) -> str:
    """``(?, ?), (?, ?)``: ``rows`` rows of ``width`` placeholders, for a multi-row
    ``VALUES`` slot."""
    return _values_rows(width, rows)


@lru_cache(maxsize=256)
def _values_rows(width: int, rows: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * rows)


def union_all(statement: str, copies: int) -> str:
    """``copies`` copies of one named SELECT joined by ``UNION ALL`` (one per key, each
    with parameters of its own)."""
    return " UNION ALL ".join([statement] * copies)
