"""docs/python-api.md says what each ``Scheduler`` method takes: every call its table of
methods writes names parameters the method has, with the defaults it has."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from tickwork import Scheduler, SyncScheduler

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
ROW_RE = re.compile(r"^\| (?P<calls>`.+?) \| ")
CALL_RE = re.compile(r"`(?P<name>\w+)\((?P<args>[^`]*)\)`")


def documented_calls() -> list[tuple[str, str]]:
    """(method, its argument list as the page writes it) for each call of the table."""
    calls = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        row = ROW_RE.match(line)
        if row:
            calls += [(m["name"], m["args"]) for m in CALL_RE.finditer(row["calls"])]
    return calls


CALLS = documented_calls()


def test_the_table_is_found() -> None:
    assert {"add_schedule", "run_now", "list_runs", "backfill"} <= {name for name, _ in CALLS}


@pytest.mark.parametrize(("name", "args"), CALLS, ids=[name for name, _ in CALLS])
def test_a_documented_call_matches_the_method(name: str, args: str) -> None:
    parameters = inspect.signature(getattr(Scheduler, name)).parameters
    assert hasattr(SyncScheduler, name)
    for part in (p.strip() for p in args.split(",")):
        if part in ("", "*", "...") or part.startswith("**"):
            continue
        param, _, default = part.partition("=")
        assert param in parameters, f"{name}: the page names {param!r}; it has {list(parameters)}"
        if default:  # "limit=100" is a default; "task=" only names a keyword
            expected = parameters[param].default
            assert ast.literal_eval(default) == expected, f"{name}({param}): {expected!r}"


@pytest.mark.parametrize("method", ["__init__", "add_schedule"])
def test_every_keyword_of_the_scheduler_is_on_the_page(method: str) -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name, param in inspect.signature(getattr(Scheduler, method)).parameters.items():
        if name != "self" and param.kind is not param.VAR_KEYWORD:
            assert f"`{name}`" in text or f"{name}=" in text, f"{method}: {name} is not on the page"
