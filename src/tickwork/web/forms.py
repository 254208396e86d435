"""The schedule form: what a browser posts, turned into schedule fields, and each bad
value named next to its field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickwork.errors import UnknownTaskError, ValidationError
from tickwork.models import CATCHUP_POLICIES, OVERLAP_POLICIES, Schedule, TaskSpec
from tickwork.schedule import ScheduleError, parse_schedule
from tickwork.validation import check_id, field_problems, start_wall_of


def json_text(text: str) -> Any:
    """``json.loads`` of what a form's field holds, every refusal a ``ValueError`` that
    says why: text nested deeper than the parser goes raises ``RecursionError``, which
    an ``except ValueError`` lets through as a server error."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(
            "it is nested too deeply to read (arrays or objects inside each other)"
        ) from None


#: The fields of the form, with what an empty one means on create.
POLICY_DEFAULTS: Final = {
    "overlap": "skip",
    "catchup": "latest",
    "misfire_grace": "30",
    "max_instances": "1",
    # Empty: left to the node that executes each run (its --default-timeout and retry
    # policy; 300 s and 3 attempts 5 s apart unless the node says otherwise).
    "retries": "",
    "retry_delay": "",
    "timeout": "",
    "priority": "0",
    "jitter": "0",
    "max_executions": "",
}

#: The fields the form shows an error under; an error about any other is shown at the
#: top of the form, so a refused form always says why.
FIELDS_WITH_ERRORS: Final = frozenset(
    (
        "task",
        "schedule",
        "timezone",
        "data",
        "name",
        "id",
        "tags",
        "description",
        "start_at",
        "end_at",
        *POLICY_DEFAULTS,
    )
)


@dataclass
class ScheduleForm:
    """The form's values as typed (to show them again) and the errors per field."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def form_values(schedule: Schedule | None) -> dict[str, str]:
    """The values a form starts with: the schedule's, or the defaults."""
    if schedule is None:
        return {
            "id": "",
            "name": "",
            "description": "",
            "task": "",
            "schedule": "",
            "timezone": "UTC",
            "data": "{}",
            "tags": "",
            "start_at": "",
            "end_at": "",
            **POLICY_DEFAULTS,
        }
    return {
        "id": schedule.id,
        "name": schedule.name,
        "description": schedule.description,
        "task": schedule.task,
        "schedule": schedule.schedule,
        "timezone": schedule.timezone,
        "data": json.dumps(schedule.data, indent=2, sort_keys=True),
        "tags": ", ".join(schedule.tags),
        # In the schedule's zone, as the fields' hint says they are read.
        "start_at": _start_text(schedule),
        "end_at": _local(schedule.end_at, schedule.timezone),
        "overlap": schedule.overlap,
        "catchup": schedule.catchup,
        "misfire_grace": _num(schedule.misfire_grace),
        "max_instances": str(schedule.max_instances),
        "retries": "" if "retry" in schedule.node_defaults else str(schedule.retry.max_attempts),
        "retry_delay": "" if "retry" in schedule.node_defaults else _num(schedule.retry.delay),
        "timeout": "" if "timeout" in schedule.node_defaults else _num(schedule.timeout),
        "priority": str(schedule.priority),
        "jitter": _num(schedule.jitter),
        "max_executions": "" if schedule.max_executions is None else str(schedule.max_executions),
    }


def _local(at: datetime | None, zone: str) -> str:
    if at is None:
        return ""
    try:
        return at.astimezone(ZoneInfo(zone)).isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        return at.isoformat()


def _start_text(schedule: Schedule) -> str:
    """``start_at`` as the form shows it: the wall time it was written as when that is in
    a DST gap (the wall time an interval keeps; its instant would name another), else
    the instant in the schedule's zone."""
    try:
        wall = start_wall_of(schedule)
    except ScheduleError:  # a zone this process does not know
        wall = None
    return wall.isoformat() if wall is not None else _local(schedule.start_at, schedule.timezone)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


#: The form's field where an error about a schedule's field is shown, when not its own.
_FORM_FIELD: Final = {
    "retry": "retries",
    "max_attempts": "retries",
    "retry.max_attempts": "retries",
    "retry.delay": "retry_delay",
}


def form_field(name: str | None) -> str:
    """The form's field an error naming the schedule's field ``name`` is shown under:
    one key of the data (``data.rows``) under Data; ``_`` (the form's top) for none."""
    if not name:
        return "_"
    if name.startswith("data."):
        return "data"
    return _FORM_FIELD.get(name, name)


def read_form(
    posted: Mapping[str, str],
    *,
    creating: bool,
    current: Schedule | None = None,
    tasks: Sequence[TaskSpec] | None = None,
) -> ScheduleForm:
    """Check every field and build the keyword arguments of a create or an update.

    Every bad field is named at once, each under its own field: the form's own checks,
    then the schedule's (``field_problems``) on the fields those passed, then, given
    the known ``tasks``, the task and its data. On edit only the fields whose value
    changed are sent, so an untouched field never overwrites a change made meanwhile
    by someone else.
    """
    values = {k: str(posted.get(k, "")).strip() for k in form_values(None)}
    for name in ("overlap", "catchup", "timezone"):
        values[name] = values[name] or form_values(None)[name]
    if not creating and current is not None:
        values["id"] = current.id
    form = ScheduleForm(values)
    f = form.fields
    errors = form.errors

    if not values["task"]:
        errors["task"] = "choose a task"
    else:
        f["task"] = values["task"]
    zone_name = values["timezone"] or "UTC"
    if not values["schedule"]:
        errors["schedule"] = "write when the task runs (a cron expression, an interval, a date)"
    else:
        try:
            parse_schedule(values["schedule"], timezone=zone_name)
            f["schedule"] = values["schedule"]
        except ScheduleError as e:
            if "zone" in str(e).lower() and "timezone" not in errors:
                errors["timezone"] = str(e)
            else:
                errors["schedule"] = str(e)
    f["timezone"] = zone_name
    try:
        data = json_text(values["data"] or "{}")
        if not isinstance(data, dict):
            errors["data"] = 'data must be a JSON object, like {"region": "eu"}'
        else:
            f["data"] = data
    except ValueError as e:
        errors["data"] = f"not valid JSON: {e}"
    f["name"] = values["name"]
    f["description"] = values["description"]
    f["tags"] = [t.strip() for t in values["tags"].split(",") if t.strip()]
    if creating and values["id"]:
        f["id"] = values["id"]
    for name in ("start_at", "end_at"):
        f[name] = values[name] or None
    if values["overlap"] not in OVERLAP_POLICIES:
        errors["overlap"] = f"one of {', '.join(OVERLAP_POLICIES)}"
    else:
        f["overlap"] = values["overlap"]
    if values["catchup"] not in CATCHUP_POLICIES:
        errors["catchup"] = f"one of {', '.join(CATCHUP_POLICIES)}"
    else:
        f["catchup"] = values["catchup"]
    _number(form, "misfire_grace", minimum=0)
    if values["timeout"]:
        _number(form, "timeout", minimum=0.001)
    elif not creating:
        f["timeout"] = None  # back to the node's default
    _number(form, "jitter", minimum=0)
    _integer(form, "max_instances", minimum=1)
    _integer(form, "priority")
    _integer(form, "max_executions", minimum=1, optional=True)
    retry: dict[str, Any] = {}
    if values["retries"]:
        retries = _integer(form, "retries", minimum=1, keep=False)
        if retries is not None:
            retry["max_attempts"] = retries
    if values["retry_delay"]:
        delay = _number(form, "retry_delay", minimum=0, keep=False)
        if delay is not None:
            retry["delay"] = delay
    if retry:
        f["retry"] = retry  # merged over the defaults
    elif not creating and not values["retries"] and not values["retry_delay"]:
        f["retry"] = None  # back to the node's default
    _schedule_checks(form, zone_name)
    if current is not None and not creating:
        form.fields = _changed_only(f, current)
    if tasks is not None and (creating or {"task", "data"} & form.fields.keys()):
        _task_checks(form, tasks, f.get("data"))  # as the engine does: on a change of either
    return form


def _schedule_checks(form: ScheduleForm, zone_name: str) -> None:
    """The schedule's own checks of each field the form's checks let through."""
    errors, f = form.errors, form.fields
    if "id" in f:
        try:
            check_id(f["id"])
        except ValidationError as e:
            errors.setdefault("id", str(e))
    checked = {k: v for k, v in f.items() if k != "id" and form_field(k) not in errors}
    if "timezone" in errors:
        checked.pop("timezone", None)
    for name, message in field_problems(checked, "UTC").items():
        errors.setdefault(form_field(name), message)


def _task_checks(
    form: ScheduleForm, tasks: Sequence[TaskSpec], data: dict[str, Any] | None
) -> None:
    """The task is known, and the data fits it (when the data is an object)."""
    name = form.values["task"]
    if not name or "task" in form.errors:
        return
    spec = next((t for t in tasks if t.name == name), None)
    if spec is None:
        form.errors["task"] = str(UnknownTaskError(name, [t.name for t in tasks]))
        return
    if data is not None and "data" not in form.errors:
        try:
            spec.check_data(data)
        except ValidationError as e:
            form.errors["data"] = str(e)


def _number(form: ScheduleForm, name: str, *, minimum: float, keep: bool = True) -> float | None:
    raw = form.values[name] or POLICY_DEFAULTS[name]
    try:
        value = float(raw)
    except ValueError:
        form.errors[name] = f"{raw!r} is not a number"
        return None
    if value < minimum:
        form.errors[name] = f"must be at least {_num(minimum)}"
        return None
    if keep:
        form.fields[name] = value
    return value


def _integer(
    form: ScheduleForm,
    name: str,
    *,
    minimum: int | None = None,
    optional: bool = False,
    keep: bool = True,
) -> int | None:
    raw = form.values[name] or POLICY_DEFAULTS[name]
    if optional and not raw:
        if keep:
            form.fields[name] = None
        return None
    try:
        value = int(raw)
    except ValueError:
        form.errors[name] = f"{raw!r} is not a whole number"
        return None
    if minimum is not None and value < minimum:
        form.errors[name] = f"must be at least {minimum}"
        return None
    if keep:
        form.fields[name] = value
    return value


def _changed_only(fields: dict[str, Any], current: Schedule) -> dict[str, Any]:
    before = form_values(current)
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ("retry", "timeout") and value is None:
            if key not in current.node_defaults:
                out[key] = None
        elif key == "retry":
            if "retry" in current.node_defaults or any(
                getattr(current.retry, k) != v for k, v in value.items()
            ):
                out[key] = value
        elif key == "timeout" and "timeout" in current.node_defaults:
            out[key] = value
        elif key == "data":
            if value != current.data:
                out[key] = value
        elif key == "tags":
            if tuple(value) != current.tags:
                out[key] = value
        elif key in ("start_at", "end_at"):
            if (value or "") != before[key]:
                out[key] = value
        elif getattr(current, key, None) != value:
            out[key] = value
    return out
