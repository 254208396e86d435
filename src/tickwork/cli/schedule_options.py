"""The options ``create`` and ``update`` share, and the schedule fields they ask for: an
option not given is not sent, so ``update`` changes only what it is told and ``create``
leaves tickwork's defaults."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated, Any

import typer

from tickwork.cli.client import parse_data
from tickwork.cli.output import Output
from tickwork.models import CATCHUP_POLICIES, OVERLAP_POLICIES

Name = Annotated[str | None, typer.Option("--name", help="A human name.")]
Description = Annotated[str | None, typer.Option("--description", help="What it is for.")]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        metavar="JSON",
        help='A JSON object passed to the task as keyword arguments, e.g. \'{"region": "eu"}\'.',
    ),
]
Tz = Annotated[
    str | None,
    typer.Option(
        "--tz", help="IANA time zone of the expression and of naive times (default: UTC)."
    ),
]
Once = Annotated[
    bool,
    typer.Option(
        "--once",
        help="Fire only once: sets max_executions=1, so '--schedule \"0 9 * * *\" --once' "
        "fires at the next 09:00 and is then finished. One-time expressions "
        "('2026-12-25 09:00', 'in 10m', 'now') fire once anyway.",
    ),
]
Overlap = Annotated[
    str | None,
    typer.Option(
        "--overlap",
        help=f"When the previous run still runs: {', '.join(OVERLAP_POLICIES)} (default: skip).",
    ),
]
MaxInstances = Annotated[
    int | None,
    typer.Option("--max-instances", help="Runs at once with --overlap allow (default: 1)."),
]
Catchup = Annotated[
    str | None,
    typer.Option(
        "--catchup",
        help=f"Fires missed while no node ran: {', '.join(CATCHUP_POLICIES)} (default: latest).",
    ),
]
MisfireGrace = Annotated[
    float | None,
    typer.Option(
        "--misfire-grace",
        metavar="SECONDS",
        help="A fire late by at most this much is on time (default: 30).",
    ),
]
Retries = Annotated[
    int | None,
    typer.Option(
        "--retries",
        metavar="N",
        help="Retries after a failed first attempt (retry.max_attempts = N + 1) (default: the "
        "task's, else the executing node's retry policy, 2 retries unless set).",
    ),
]
RetryDelay = Annotated[
    float | None,
    typer.Option(
        "--retry-delay",
        metavar="SECONDS",
        help="Delay before the first retry, doubled each time, with full jitter (default: 5).",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Stop an attempt after this long (default: the task's, else the executing "
        "node's --default-timeout, 300 unless set).",
    ),
]
MaxExecutions = Annotated[
    int | None,
    typer.Option("--max-executions", metavar="N", help="Finished after N fires."),
]
StartAt = Annotated[
    str | None,
    typer.Option(
        "--start-at", metavar="ISO", help="First possible fire (inclusive); naive = in --tz."
    ),
]
EndAt = Annotated[
    str | None,
    typer.Option("--end-at", metavar="ISO", help="No fire after this; naive = in --tz."),
]
Jitter = Annotated[
    float | None,
    typer.Option(
        "--jitter",
        metavar="SECONDS",
        help="Delay each fire by up to this much (stable per schedule and fire time).",
    ),
]
Priority = Annotated[
    int | None,
    typer.Option("--priority", help="Higher runs first when more are due than slots (default: 0)."),
]
Tags = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="TAG", help="A tag (repeatable); update replaces them all."),
]
ResultQueue = Annotated[
    str | None,
    typer.Option("--result-queue", metavar="QUEUE", help="Queue that receives results."),
]
ErrorQueue = Annotated[
    str | None,
    typer.Option("--error-queue", metavar="QUEUE", help="Queue that receives final errors."),
]

#: The shared options in their order in ``--help``: (parameter, annotation, default).
SHARED: tuple[tuple[str, Any, Any], ...] = (
    ("name", Name, None),
    ("description", Description, None),
    ("data", Data, None),
    ("tz", Tz, None),
    ("once", Once, False),
    ("overlap", Overlap, None),
    ("max_instances", MaxInstances, None),
    ("catchup", Catchup, None),
    ("misfire_grace", MisfireGrace, None),
    ("retries", Retries, None),
    ("retry_delay", RetryDelay, None),
    ("timeout", Timeout, None),
    ("max_executions", MaxExecutions, None),
    ("start_at", StartAt, None),
    ("end_at", EndAt, None),
    ("jitter", Jitter, None),
    ("priority", Priority, None),
    ("tags", Tags, None),
    ("result_queue", ResultQueue, None),
    ("error_queue", ErrorQueue, None),
)

#: What a command decorated with ``with_schedule_options`` receives as ``options``.
ScheduleOptions = Mapping[str, Any]
#: The placeholder default of ``options`` (the decorator always passes them).
GIVEN: ScheduleOptions = MappingProxyType({})


def with_schedule_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the shared options in place of its parameter ``options``, declared
    ``options: ScheduleOptions = GIVEN``, which receives them as one mapping by name.
    Typer reads a command's options from its signature: this way ``create`` and
    ``update`` declare them once."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "options":
            parameters.append(parameter)
            continue
        parameters.extend(
            inspect.Parameter(name, parameter.kind, default=default, annotation=annotation)
            for name, annotation, default in SHARED
        )
    if len(parameters) == len(signature.parameters):
        raise TypeError(f"{command.__name__} has no parameter 'options'")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name, _, _ in SHARED}
        command(*args, options=options, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def schedule_fields(
    out: Output,
    *,
    name: str | None,
    description: str | None,
    data: str | None,
    tz: str | None,
    once: bool,
    overlap: str | None,
    max_instances: int | None,
    catchup: str | None,
    misfire_grace: float | None,
    retries: int | None,
    retry_delay: float | None,
    timeout: float | None,
    max_executions: int | None,
    start_at: str | None,
    end_at: str | None,
    jitter: float | None,
    priority: int | None,
    tags: list[str] | None,
    result_queue: str | None,
    error_queue: str | None,
) -> dict[str, Any]:
    """The schedule fields the options ask for; options not given are left out."""
    fields: dict[str, Any] = {}
    plain = {
        "name": name,
        "description": description,
        "timezone": tz,
        "overlap": overlap,
        "max_instances": max_instances,
        "catchup": catchup,
        "misfire_grace": misfire_grace,
        "timeout": timeout,
        "max_executions": max_executions,
        "start_at": start_at,
        "end_at": end_at,
        "jitter": jitter,
        "priority": priority,
        "result_queue": result_queue,
        "error_queue": error_queue,
    }
    fields.update({k: v for k, v in plain.items() if v is not None})
    parsed = parse_data(out, data)
    if parsed is not None:
        fields["data"] = parsed
    if once:
        if max_executions not in (None, 1):
            out.fail(f"--once means --max-executions 1; it conflicts with {max_executions}")
        fields["max_executions"] = 1
    retry: dict[str, Any] = {}
    if retries is not None:
        if retries < 0:
            out.fail(f"--retries must be >= 0, not {retries}")
        retry["max_attempts"] = retries + 1
    if retry_delay is not None:
        retry["delay"] = retry_delay
    if retry:
        fields["retry"] = retry
    if tags is not None:
        fields["tags"] = list(tags)
    return fields
