"""The public surface: the names ``tickwork`` exports, that they import, that importing
``tickwork`` alone stays cheap, that type checkers see the names and the package says it
is typed, and that ``SyncScheduler`` offers every call of ``Scheduler``."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

import tickwork
from tickwork import Scheduler, SyncScheduler

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = [
    "REGISTRY",
    "ApiToken",
    "Attempt",
    "AuditEntry",
    "Clock",
    "ConflictError",
    "EngineConfig",
    "Event",
    "LogRecord",
    "ManualClock",
    "Node",
    "NotFoundError",
    "ParsedSchedule",
    "PreconditionFailedError",
    "QueueMessage",
    "RetryPolicy",
    "Run",
    "RunContext",
    "RunStatus",
    "RunTimeoutError",
    "Schedule",
    "ScheduleError",
    "ScheduleStatus",
    "Scheduler",
    "StoreError",
    "StoreUnavailableError",
    "SyncScheduler",
    "SystemClock",
    "TaskRegistry",
    "TaskSpec",
    "TaskStats",
    "TickworkError",
    "UnknownTaskError",
    "ValidationError",
    "__version__",
    "parse_schedule",
    "task",
]


def test_all_is_pinned() -> None:
    assert tickwork.__all__ == PUBLIC


def test_the_contract_names_are_public() -> None:
    # The package's promised names (Python API, schedule language, wrapper for sync code).
    assert {"Scheduler", "SyncScheduler", "task", "parse_schedule", "ScheduleError"} <= set(
        tickwork.__all__
    )
    assert issubclass(tickwork.ScheduleError, ValueError)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from tickwork import {name}", namespace)
    assert namespace[name] is getattr(tickwork, name)
    assert namespace[name] is not None
    assert name in dir(tickwork)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Shceduler'"):
        _ = tickwork.Shceduler  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from tickwork import Shceduler", {})


def test_type_checkers_see_every_lazy_name() -> None:
    """The names imported under ``TYPE_CHECKING`` are exactly those loaded on demand,
    from the same modules: what mypy sees is what ``from tickwork import X`` gives."""
    source = Path(tickwork.__file__).read_text()
    seen: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module is not None
                seen.update({alias.name: stmt.module for alias in stmt.names})
    assert seen == tickwork._WHERE
    assert set(seen) | {"__version__"} == set(tickwork.__all__)


def test_import_tickwork_loads_nothing_else() -> None:
    code = (
        "import sys, tickwork\n"
        "print(sorted(m for m in sys.modules if m.startswith('tickwork.')))\n"
        "print('asyncio' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "False"


def test_the_wheel_is_typed_and_ships_the_front_end_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tickwork-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tickwork/py.typed" in names
    # The dashboard's and /docs' files (vendored, so no page needs the internet).
    static = resources.files("tickwork.web").joinpath("static")
    shipped = {f"tickwork/web/static/{entry.name}" for entry in static.iterdir()}
    assert "tickwork/web/static/swagger-ui-bundle.js" in shipped
    assert shipped <= names


def _coroutine_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(value)
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    }


def test_sync_scheduler_offers_every_scheduler_call() -> None:
    """Each coroutine method of ``Scheduler`` is a method of ``SyncScheduler`` (in the
    class, where type checkers see it) with the same parameters."""
    calls = _coroutine_methods(Scheduler)
    assert {"add_schedule", "run_now", "list_runs", "nodes", "stats"} <= set(calls)
    for name, signature in calls.items():
        assert name in vars(SyncScheduler), name
        blocking = inspect.signature(getattr(SyncScheduler, name))
        assert list(blocking.parameters) == list(signature.parameters), name
    assert inspect.signature(SyncScheduler.__init__) == inspect.signature(Scheduler.__init__)


def test_sync_scheduler_offers_the_stuck_counts() -> None:
    """What a node reports of the tasks it gave up on, readable in a synchronous program."""
    for name in ("stuck_threads", "stuck_coroutines"):
        assert isinstance(vars(Scheduler)[name], property), name
        assert isinstance(vars(SyncScheduler).get(name), property), name
