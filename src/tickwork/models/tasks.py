"""What a node publishes about a task (``TaskSpec``), and the check of schedule data
against it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tickwork.data_types import ArgType
from tickwork.errors import FieldProblem, ValidationError
from tickwork.models.schedules import RetryPolicy


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a node publishes about a task, so a client that cannot import the task
    still refuses data that does not fit it and applies the task's defaults."""

    name: str
    #: Keyword arguments the task accepts (its ``ctx`` parameter excluded).
    arguments: tuple[str, ...] = ()
    #: Those of ``arguments`` without a default value.
    required: tuple[str, ...] = ()
    #: It takes ``**kwargs``: any data key is accepted.
    accepts_any: bool = False
    executor: str = "async"
    timeout: float | None = None
    retries: int | None = None
    concurrency: int | None = None
    #: What each argument whose annotation JSON can meet accepts, its elements
    #: included; an argument missing here is not checked (no annotation, ``Any``, a
    #: class; a spec published by a tickwork without types checks names only, one
    #: published by a tickwork without element types checks the outer kinds only).
    types: dict[str, ArgType] = field(default_factory=dict, hash=False)
    #: The default value of each optional argument that JSON carries exactly and that
    #: is short enough to show (``registry.shown_defaults``); the others are only known to
    #: have one. For people choosing data: the task applies its defaults itself.
    defaults: dict[str, Any] = field(default_factory=dict, hash=False)

    def schedule_defaults(self) -> dict[str, Any]:
        """The ``timeout`` and ``retry`` of a new schedule of this task that sets
        neither: the task's own, where it declares them (else the node's apply)."""
        defaults: dict[str, Any] = {}
        if self.timeout is not None:
            defaults["timeout"] = self.timeout
        if self.retries is not None:
            defaults["retry"] = RetryPolicy(max_attempts=self.retries + 1)
        return defaults

    def check_data(self, data: dict[str, Any]) -> None:
        """Raise ``ValidationError`` when ``data`` cannot be passed as keyword arguments
        or a value is not of the type its parameter is annotated with; its ``problems``
        name every key at fault (``data_problems``)."""
        problems = self.data_problems(data)
        if problems:
            first = problems[0]
            raise ValidationError(first.message, field=first.field, problems=problems[1:])

    def data_problems(self, data: dict[str, Any]) -> list[FieldProblem]:
        """What is wrong with ``data`` for this task: keys it takes no argument for
        and required ones missing (field ``data``), then each value not of its
        parameter's type (field ``data.<key>`` and the path to the wrong part)."""
        problems: list[FieldProblem] = []
        if not self.accepts_any:
            for key in data:
                if key not in self.arguments:
                    problems.append(
                        FieldProblem(
                            "data",
                            f"task {self.name!r} takes no argument {key!r} "
                            f"(it takes: {', '.join(self.arguments) or 'none'})",
                        )
                    )
                    break
        missing = [n for n in self.required if n not in data]
        if missing and not problems:
            problems.append(
                FieldProblem(
                    "data", f"task {self.name!r} needs data for {', '.join(map(repr, missing))}"
                )
            )
        for key, value in data.items():
            accepted = self.types.get(key)
            found = accepted.problem(value) if accepted is not None else None
            if found is not None:
                assert accepted is not None
                path, wrong = found
                problems.append(
                    FieldProblem(
                        f"data.{key}{path}",
                        f"data.{key}{path} {wrong} "
                        f"(task {self.name!r} takes {key}: {accepted.annotation()})",
                    )
                )
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arguments": list(self.arguments),
            "required": list(self.required),
            "accepts_any": self.accepts_any,
            "executor": self.executor,
            "timeout": self.timeout,
            "retries": self.retries,
            "concurrency": self.concurrency,
            "types": {name: t.to_dict() for name, t in self.types.items()},
            "defaults": dict(self.defaults),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(
            name=d["name"],
            arguments=tuple(d.get("arguments", ())),
            required=tuple(d.get("required", ())),
            accepts_any=bool(d.get("accepts_any", False)),
            executor=d.get("executor", "async"),
            timeout=d.get("timeout"),
            retries=d.get("retries"),
            concurrency=d.get("concurrency"),
            types={
                name: ArgType.from_dict(t)
                for name, t in (d.get("types") or {}).items()
                if isinstance(t, dict)
            },
            # A spec published by a tickwork without defaults has none to show.
            defaults=dict(defaults) if isinstance(defaults := d.get("defaults"), dict) else {},
        )
