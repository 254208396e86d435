"""Tasks: the ``@task`` decorator and the registry that maps names to callables.

Schedule data arrives as keyword arguments, so a schedule whose data does not fit the
task's signature (a name it does not take, a value its annotation does not accept) is
refused when it is created, not when it first fires at 2 am.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, overload

from tickwork.engine.argument_types import argument_types
from tickwork.errors import UnknownTaskError, ValidationError
from tickwork.limits import MAX_ATTEMPTS, echo
from tickwork.models import TaskSpec
from tickwork.validation import integer, seconds

Executor = Literal["async", "thread", "process"]
EXECUTORS: tuple[Executor, ...] = ("async", "thread", "process")

F = TypeVar("F", bound=Callable[..., Any])

#: Characters of a task name (what the REST API takes).
MAX_TASK_NAME: Final = 200
#: Characters of JSON a published default takes at most; a longer one is not shown.
MAX_SHOWN_DEFAULT: Final = 200


def _json_exact(value: object, depth: int = 0) -> bool:
    """Whether JSON carries ``value`` as it is (a tuple as its list): no NaN, no key
    that is not a string, nothing JSON has no word for."""
    if value is None or isinstance(value, (bool, str, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth >= 8:
        return False
    if isinstance(value, (list, tuple)):
        return all(_json_exact(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_exact(v, depth + 1) for k, v in value.items())
    return False


def shown_defaults(params: list[inspect.Parameter]) -> dict[str, Any]:
    """The defaults a node publishes with a task, so ``tickwork tasks``, ``GET /tasks``
    and the dashboard show what an argument left out of the data will be. Only values
    JSON carries exactly and briefly: a default that is an object, or a long text,
    would be shown wrong or crowd the table, and is only said to exist."""
    shown: dict[str, Any] = {}
    for p in params:
        if p.default is p.empty or not _json_exact(p.default):
            continue
        text = json.dumps(p.default, ensure_ascii=False)
        if len(text) <= MAX_SHOWN_DEFAULT:
            shown[p.name] = json.loads(text)  # a copy: tuples become lists
    return shown


#: A task's ``concurrency`` at most (runs at once over all nodes).
MAX_CONCURRENCY: Final = 1_000_000


@dataclass(frozen=True)
class TaskDef:
    """A registered task and its defaults (a schedule's own settings win)."""

    name: str
    fn: Callable[..., Any]
    executor: Executor
    timeout: float | None = None
    retries: int | None = None
    concurrency: int | None = None
    takes_ctx: bool = False
    signature: inspect.Signature = field(repr=False, default=inspect.Signature())

    @property
    def qualified_name(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    @functools.cached_property
    def spec(self) -> TaskSpec:
        """The part of the task other processes need: arguments and defaults."""
        params = list(self.signature.parameters.values())
        if self.takes_ctx:
            params = params[1:]
        keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return TaskSpec(
            name=self.name,
            arguments=tuple(p.name for p in params if p.kind in keyword),
            required=tuple(p.name for p in params if p.kind in keyword and p.default is p.empty),
            accepts_any=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params),
            executor=self.executor,
            timeout=self.timeout,
            retries=self.retries,
            concurrency=self.concurrency,
            types=argument_types(self.fn, (p for p in params if p.kind in keyword)),
            defaults=shown_defaults([p for p in params if p.kind in keyword]),
        )

    def check_data(self, data: dict[str, Any]) -> None:
        """Raise ``ValidationError`` when ``data`` cannot be passed as keyword arguments."""
        self.spec.check_data(data)


class TaskRegistry:
    """Name -> TaskDef. One per process by default (``REGISTRY``); tests make their own."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDef] = {}

    def add(self, task: TaskDef) -> None:
        existing = self._tasks.get(task.name)
        if existing is not None and existing.qualified_name != task.qualified_name:
            raise ValidationError(
                f"task name {task.name!r} is already registered for {existing.qualified_name}",
                field="task",
            )
        self._tasks[task.name] = task

    def get(self, name: str) -> TaskDef | None:
        return self._tasks.get(name)

    def require(self, name: str) -> TaskDef:
        task = self._tasks.get(name)
        if task is None:
            raise UnknownTaskError(name, self._tasks)
        return task

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def limits(self) -> dict[str, int]:
        """Per-task concurrency limits, for claiming."""
        return {t.name: t.concurrency for t in self._tasks.values() if t.concurrency is not None}

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[TaskDef]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)


REGISTRY = TaskRegistry()


def check_task_name(name: Any) -> str:
    """A task name as schedules can name it through every door: 1 to ``MAX_TASK_NAME``
    characters, no control character, no space at either end (the name a schedule
    gives is trimmed, so a padded name could never be found)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"a task name must be a non-empty string, not {echo(name)}", field="task"
        )
    if len(name) > MAX_TASK_NAME:
        raise ValidationError(
            f"task name {echo(name)} is longer than {MAX_TASK_NAME} characters", field="task"
        )
    if name != name.strip():
        raise ValidationError(f"task name {echo(name)} starts or ends with a space", field="task")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise ValidationError(f"task name {echo(name)} contains a control character", field="task")
    return name


def make_task(
    fn: Callable[..., Any],
    name: str | None = None,
    *,
    timeout: float | None = None,
    retries: int | None = None,
    concurrency: int | None = None,
    executor: Executor | None = None,
) -> TaskDef:
    """Build a ``TaskDef``, checking the options."""
    if not callable(fn):
        raise ValidationError(f"task {name!r} is not callable", field="task")
    task_name = check_task_name(
        f"{fn.__module__}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"
        if name is None
        else name
    )
    is_async = inspect.iscoroutinefunction(fn)
    chosen: Executor = executor or ("async" if is_async else "thread")
    if chosen not in EXECUTORS:
        raise ValidationError(
            f"executor {chosen!r} is not one of {', '.join(EXECUTORS)}", field="executor"
        )
    if chosen == "async" and not is_async:
        raise ValidationError(
            f"task {task_name!r}: executor 'async' needs an async def", field="executor"
        )
    if chosen != "async" and is_async and chosen == "thread":
        raise ValidationError(
            f"task {task_name!r} is async: use executor 'async' or 'process'", field="executor"
        )
    if timeout is not None:
        timeout = seconds(timeout, "timeout", allow_zero=False)
    if retries is not None:
        retries = integer(retries, "retries", minimum=0, maximum=MAX_ATTEMPTS - 1)
    if concurrency is not None:
        concurrency = integer(concurrency, "concurrency", minimum=1, maximum=MAX_CONCURRENCY)
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    takes_ctx = (
        bool(params)
        and params[0].name == "ctx"
        and params[0].kind
        in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    )
    for p in params[1 if takes_ctx else 0 :]:
        if p.kind is inspect.Parameter.POSITIONAL_ONLY and p.default is p.empty:
            raise ValidationError(
                f"task {task_name!r}: parameter {p.name!r} is positional-only, but a "
                "run passes its data as keyword arguments (and the context as 'ctx')",
                field="task",
            )
    return TaskDef(
        name=task_name,
        fn=fn,
        executor=chosen,
        timeout=timeout,
        retries=retries,
        concurrency=concurrency,
        takes_ctx=takes_ctx,
        signature=sig,
    )


@overload
def task(name: F, /) -> F: ...
@overload
def task(
    name: str | None = None,
    *,
    timeout: float | None = None,
    retries: int | None = None,
    concurrency: int | None = None,
    executor: Executor | None = None,
    registry: TaskRegistry | None = None,
) -> Callable[[F], F]: ...
def task(
    name: Any = None,
    *,
    timeout: float | None = None,
    retries: int | None = None,
    concurrency: int | None = None,
    executor: Executor | None = None,
    registry: TaskRegistry | None = None,
) -> Any:
    """Register a function as a task: ``@task("reports:daily", timeout=600)``.

    A first parameter named ``ctx`` receives the ``RunContext``; schedule data arrives
    as keyword arguments. ``retries`` is the number of retries after the first attempt.
    ``concurrency`` limits how many runs of the task execute at once over all nodes.
    """
    target = registry if registry is not None else REGISTRY
    if not isinstance(target, TaskRegistry):
        raise ValidationError("registry must be a TaskRegistry", field="registry")
    if callable(name):
        target.add(make_task(name))
        return name

    def decorate(fn: F) -> F:
        target.add(
            make_task(
                fn,
                name,
                timeout=timeout,
                retries=retries,
                concurrency=concurrency,
                executor=executor,
            )
        )
        return fn

    return decorate
