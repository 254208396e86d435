"""The options ``create`` and ``update`` share, and the schedule fields they ask for: an
option not given is not sent, so ``update`` changes only what it is told and ``create``
leaves tickwork's defaults."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Final

import typer

from tickwork.cli.client import parse_data
from tickwork.cli.output import Output
from tickwork.models import CATCHUP_POLICIES, OVERLAP_POLICIES


@dataclass(frozen=True)
class _Shared:
    """One shared option: ``create_default`` ends its help for ``create`` only, since
    ``update`` leaves a field it is not given as it is."""

    name: str
    kind: Any
    decls: tuple[str, ...]
    help: str
    create_default: str | None = None
    metavar: str | None = None
    default: Any = None
    #: The least and the greatest value (None: no bound): out of range is a usage error
    #: naming the option.
    bounds: tuple[float | None, float | None] = (None, None)

    def parameter(self, *, for_update: bool) -> tuple[Any, Any]:
        """The annotation and default of this option's parameter in ``create`` or
        ``update``."""
        text = self.help
        if self.create_default is not None and not for_update:
            text = f"{text} (default: {self.create_default})."
        elif not text.endswith("."):
            text += "."
        least, greatest = self.bounds
        option = typer.Option(
            *self.decls,
            metavar=self.metavar,
            help=text,
            min=least,
            max=greatest,
        )
        return Annotated[self.kind, option], self.default


#: The bounds the REST API puts on these fields (``tickwork.api.schemas``): a value is
#: refused alike on the database and through a server, and never reaches the database
#: as a number it cannot store (SQLite's integers end at 2**63).
SECONDS: Final = (0, 10**9)

#: The shared options in their order in ``--help``.
SHARED: tuple[_Shared, ...] = (
    _Shared("name", str | None, ("--name",), "A human name."),
    _Shared("description", str | None, ("--description",), "What it is for."),
    _Shared(
        "data",
        str | None,
        ("--data",),
        'A JSON object passed to the task as keyword arguments, e.g. \'{"region": "eu"}\'.',
        metavar="JSON",
    ),
    _Shared(
        "tz",
        str | None,
        ("--tz",),
        "IANA time zone of the expression and of naive times",
        create_default="UTC",
    ),
    _Shared(
        "once",
        bool,
        ("--once",),
        "Fire only once: sets max_executions=1, so '--schedule \"0 9 * * *\" --once' "
        "fires at the next 09:00 and is then finished. One-time expressions "
        "('2026-12-25 09:00', 'in 10m', 'now') fire once anyway.",
        default=False,
    ),
    _Shared(
        "overlap",
        str | None,
        ("--overlap",),
        f"When the previous run still runs: {', '.join(OVERLAP_POLICIES)}",
        create_default="skip",
    ),
    _Shared(
        "max_instances",
        int | None,
        ("--max-instances",),
        "Runs at once with --overlap allow",
        create_default="1",
        bounds=(1, 10_000),
    ),
    _Shared(
        "catchup",
        str | None,
        ("--catchup",),
        f"Fires missed while no node ran: {', '.join(CATCHUP_POLICIES)}",
        create_default="latest",
    ),
    _Shared(
        "misfire_grace",
        float | None,
        ("--misfire-grace",),
        "A fire late by at most this much is on time",
        create_default="30",
        metavar="SECONDS",
        bounds=SECONDS,
    ),
    _Shared(
        "retries",
        int | None,
        ("--retries",),
        "Retries after a failed first attempt (retry.max_attempts = N + 1)",
        create_default="the task's, else the executing node's retry policy, 2 retries unless set",
        metavar="N",
        bounds=(0, 999),
    ),
    _Shared(
        "retry_delay",
        float | None,
        ("--retry-delay",),
        "Delay before the first retry, doubled each time, with full jitter",
        create_default="5",
        metavar="SECONDS",
        bounds=SECONDS,
    ),
    _Shared(
        "timeout",
        float | None,
        ("--timeout",),
        "Stop an attempt after this long",
        create_default="the task's, else the executing node's --default-timeout, 300 unless set",
        metavar="SECONDS",
        bounds=SECONDS,
    ),
    _Shared(
        "max_executions",
        int | None,
        ("--max-executions",),
        "Finished after N fires",
        metavar="N",
        bounds=(1, 2**31 - 1),  # the databases' integer column
    ),
    _Shared(
        "start_at",
        str | None,
        ("--start-at",),
        "First possible fire (inclusive); naive = in --tz",
        metavar="ISO",
    ),
    _Shared(
        "end_at",
        str | None,
        ("--end-at",),
        "No fire after this; naive = in --tz",
        metavar="ISO",
    ),
    _Shared(
        "jitter",
        float | None,
        ("--jitter",),
        "Delay each fire by up to this much (stable per schedule and fire time)",
        metavar="SECONDS",
        bounds=SECONDS,
    ),
    _Shared(
        "priority",
        int | None,
        ("--priority",),
        "Higher runs first when more are due than slots",
        create_default="0",
        bounds=(-(10**6), 10**6),
    ),
    _Shared(
        "tags",
        list[str] | None,
        ("--tag",),
        "A tag (repeatable); update replaces them all",
        metavar="TAG",
    ),
    _Shared(
        "result_queue",
        str | None,
        ("--result-queue",),
        "Queue that receives results",
        metavar="QUEUE",
    ),
    _Shared(
        "error_queue",
        str | None,
        ("--error-queue",),
        "Queue that receives final errors",
        metavar="QUEUE",
    ),
)

#: What a command decorated with ``with_schedule_options`` receives as ``options``.
ScheduleOptions = Mapping[str, Any]
#: The placeholder default of ``options`` (the decorator always passes them).
GIVEN: ScheduleOptions = MappingProxyType({})


def with_schedule_options(
    *, for_update: bool
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give the command the shared options in place of its parameter ``options``,
    declared ``options: ScheduleOptions = GIVEN``, which receives them as one mapping by
    name. Typer reads a command's options from its signature: this way ``create`` and
    ``update`` declare them once. ``for_update``: help without ``create``'s defaults."""
    return functools.partial(_with_options, for_update=for_update)


def _with_options(command: Callable[..., None], *, for_update: bool) -> Callable[..., None]:
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "options":
            parameters.append(parameter)
            continue
        for option in SHARED:
            annotation, default = option.parameter(for_update=for_update)
            parameters.append(
                inspect.Parameter(
                    option.name, parameter.kind, default=default, annotation=annotation
                )
            )
    if len(parameters) == len(signature.parameters):
        raise TypeError(f"{command.__name__} has no parameter 'options'")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        options = {option.name: kwargs.pop(option.name) for option in SHARED}
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
            out.fail(
                f"--once means --max-executions 1; it conflicts with --max-executions "
                f"{max_executions}",
                code=2,
            )
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
