"""Turning what a user asked for into a valid ``Schedule``, or a clear error naming the field.

Shared by the Python API, the CLI and the REST API so the three accept and refuse the
same things with the same words.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tickwork.errors import ScheduleError, ValidationError
from tickwork.limits import (
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    MAX_DESCRIPTION,
    MAX_EXECUTIONS,
    MAX_INSTANCES,
    MAX_PRIORITY,
    MAX_SECONDS,
    MAX_SHORT_TEXT,
    MAX_TAGS,
    check_json_value,
    check_text,
    echo,
)
from tickwork.models import (
    CATCHUP_POLICIES,
    DEFAULT_TIMEOUT,
    NODE_DEFAULT_FIELDS,
    OVERLAP_POLICIES,
    RetryPolicy,
    Schedule,
)
from tickwork.schedule import ParsedSchedule, parse_schedule, validate_timezone
from tickwork.schedule.base import aware_in_zone
from tickwork.schedule.interval import anchor_for_wall, start_wall, wall_of_anchor
from tickwork.schedule.parse import parse_stored
from tickwork.schedule.zones import zone_for

#: Fields a user may set; the rest of ``Schedule`` is maintained by tickwork.
SETTABLE_FIELDS: Final = (
    "task",
    "schedule",
    "name",
    "description",
    "timezone",
    "data",
    "start_at",
    "end_at",
    "jitter",
    "paused",
    "overlap",
    "catchup",
    "catchup_spread",
    "misfire_grace",
    "max_instances",
    "max_executions",
    "retry",
    "timeout",
    "priority",
    "result_queue",
    "error_queue",
    "tags",
    "metadata",
    "owner",
)

#: The instants a user may give (``start_at``, a backfill's range, a filter): a day
#: inside what ``datetime`` holds, so the local time of one in any zone, and a day's
#: step either side of it, can still be computed.
_EARLIEST: Final = datetime(1, 1, 2, tzinfo=UTC)
_LATEST: Final = datetime(9999, 12, 30, tzinfo=UTC)

_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_RETRY_KEYS: Final = ("max_attempts", "delay", "backoff", "max_delay", "jitter")


def check_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValidationError(
            f"{field} {echo(value)} is invalid: use 1-200 characters of letters, digits "
            "and . _ : @ - (starting with a letter or digit)",
            field=field,
        )
    return value


def parse_instant(value: Any, field: str, timezone: str = "UTC") -> datetime | None:
    """An aware UTC datetime from a datetime or ISO-8601 string (naive = a wall time in
    ``timezone``, with the gap and overlap rule of ``parse_schedule``), between
    ``_EARLIEST`` and ``_LATEST``."""
    if value is None or value == "":
        return None
    shown = value  # as the user wrote it, for the message
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"{field} {echo(value)} is not an ISO-8601 date-time", field=field
            ) from None
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime or ISO-8601 string", field=field)
    if not isinstance(shown, str):
        shown = value.isoformat()
    zone = None if value.utcoffset() is not None else zone_for(validate_timezone(timezone))
    instant: datetime | None
    try:
        # A naive wall time reads as parse_schedule reads it: one in a DST gap is the
        # first instant after the gap, one in an overlap its first occurrence (its
        # second with fold=1).
        instant = value.astimezone(UTC) if zone is None else aware_in_zone(value, zone)
    except (OverflowError, ValueError):  # past the year 9999 or before the year 1 in UTC
        instant = None
    if instant is None or not _EARLIEST <= instant <= _LATEST:
        raise ValidationError(
            f"{field} {echo(shown)} is out of range: give an instant between "
            f"{_EARLIEST.date().isoformat()} and {_LATEST.date().isoformat()} (UTC)",
            field=field,
        )
    return instant


def start_anchor(value: Any, timezone: str, start: datetime) -> datetime:
    """The anchor of a schedule whose ``start_at`` is ``value`` as given (``start`` as
    read by ``parse_instant``): ``start`` itself, or, for a wall time in a DST gap, the
    anchor that carries that wall time, which interval steps keep (``anchor_for_wall``)."""
    zone = zone_for(validate_timezone(timezone))
    try:
        wall = start_wall(value, zone)
    except ScheduleError:  # text parse_instant reads and the schedule layer does not
        return start
    return start if wall is None else anchor_for_wall(wall, zone)


def seconds(
    value: Any,
    field: str,
    *,
    minimum: float = 0,
    allow_zero: bool = True,
    maximum: float = MAX_SECONDS,
) -> float:
    """A duration a user gave (a number of seconds or a ``timedelta``) as seconds, or a
    ``ValidationError`` naming ``field``: not a number (a ``bool`` is none), not finite,
    below ``minimum`` (or zero when not allowed), or above ``maximum``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"{field} must be a number of seconds or a timedelta, not {echo(value)}",
            field=field,
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(
            f"{field} must be a finite number of seconds, not {echo(value)}", field=field
        )
    if number < minimum or (not allow_zero and number == 0):
        bound = f"> {minimum:g}" if not allow_zero else f">= {minimum:g}"
        raise ValidationError(f"{field} must be {bound}, not {echo(value)}", field=field)
    if number > maximum:
        raise ValidationError(
            f"{field} must be at most {maximum:.0f} seconds, not {echo(value)}", field=field
        )
    return number


def integer(
    value: Any,
    field: str,
    *,
    minimum: int,
    maximum: int,
    optional: bool = False,
) -> int | None:
    """An integer a user gave within [minimum, maximum] (a ``bool`` is none), or a
    ``ValidationError`` naming ``field``; None too when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(
            f"{field} must be an integer from {minimum} to {maximum}, not {echo(value)}",
            field=field,
        )
    return value


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A JSON object from a mapping or JSON text, within the limits of
    ``tickwork.limits`` (size, depth, no NUL), or a ``ValidationError`` naming ``field``."""
    if value is None:
        return {}
    if isinstance(value, str):
        check_text(value, field, limit=len(value))  # only its encoding: size is below
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{field} is not valid JSON: {exc}", field=field) from None
        except RecursionError:
            raise ValidationError(f"{field} is nested too deeply", field=field) from None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a JSON object", field=field)
    check_json_value(value, field)
    return dict(value)


def parse_retry(value: Any, base: RetryPolicy | None = None) -> RetryPolicy:
    """A ``RetryPolicy`` from a partial dict (merged over ``base`` or the defaults), an
    int (max_attempts) or a ``RetryPolicy``."""
    base = base or RetryPolicy()
    if value is None:
        return base
    if isinstance(value, RetryPolicy):
        value = value.to_dict()
    elif isinstance(value, int) and not isinstance(value, bool):
        value = {"max_attempts": value}
    if not isinstance(value, Mapping):
        raise ValidationError(
            "retry must be an object with " + ", ".join(_RETRY_KEYS), field="retry"
        )
    unknown = set(value) - set(_RETRY_KEYS)
    if unknown:
        raise ValidationError(
            f"retry has unknown field(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(_RETRY_KEYS)}",
            field="retry",
        )
    merged = base.to_dict() | dict(value)
    if not isinstance(merged["jitter"], bool):
        raise ValidationError("retry.jitter must be true or false", field="retry.jitter")
    return RetryPolicy(
        max_attempts=integer(
            merged["max_attempts"], "retry.max_attempts", minimum=1, maximum=MAX_ATTEMPTS
        )
        or 1,
        delay=seconds(merged["delay"], "retry.delay"),
        backoff=_backoff(merged["backoff"]),
        max_delay=seconds(merged["max_delay"], "retry.max_delay"),
        jitter=merged["jitter"],
    )


def _backoff(value: Any) -> float:
    """A retry policy's ``backoff``: the factor each delay grows by, 1 to ``MAX_BACKOFF``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 1 <= value <= MAX_BACKOFF
    ):
        raise ValidationError(
            f"retry.backoff must be a number from 1 to {MAX_BACKOFF}, not {echo(value)}",
            field="retry.backoff",
        )
    return float(value)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) and t for t in value):
        raise ValidationError("tags must be a list of non-empty strings", field="tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(
            f"{len(value)} tags given; at most {MAX_TAGS} are accepted", field="tags"
        )
    for tag in value:
        check_text(tag, "tags")
    return tuple(dict.fromkeys(value))


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValidationError(
            f"{field} {echo(value)} is not one of {', '.join(allowed)}", field=field
        )
    return value


def _optional_str(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    return check_text(value, field)


def build_schedule(base: Schedule, changes: Mapping[str, Any], now: datetime) -> Schedule:
    """Apply ``changes`` (user-settable fields only) to ``base`` and validate the result.

    Raises ``ValidationError``/``ScheduleError`` naming the first bad field. The
    expression is parsed with the final timezone, so a change of either is checked.
    """
    values = _settable_values(changes, base.timezone, base.retry)
    values["node_defaults"] = node_defaults(base.node_defaults, changes)
    result = base.replace(**values)
    _check(result, now)
    return result


def new_schedule(
    schedule_id: str, changes: Mapping[str, Any], now: datetime
) -> tuple[Schedule, ParsedSchedule]:
    """``build_schedule`` for a schedule created, anchored and updated at ``now``, with
    the same checks and errors; built in one go (it is on the path of every add), and
    returned with its parsed expression, which is ``parsed_schedule`` of the record."""
    values = _settable_values(changes, "UTC", None)
    values["node_defaults"] = node_defaults(NODE_DEFAULT_FIELDS, changes)
    task = values.pop("task", "")
    expr = values.pop("schedule", "")
    values.setdefault("anchor", now)  # an interval without start_at counts from now
    result = Schedule(
        id=schedule_id, task=task, schedule=expr, created_at=now, updated_at=now, **values
    )
    return result, _check(result, now)


def node_defaults(current: tuple[str, ...], changes: Mapping[str, Any]) -> tuple[str, ...]:
    """Which of ``retry`` and ``timeout`` a schedule leaves to the executing node once
    ``changes`` apply: a field given a value is the schedule's own; given None, it goes
    back to the node; not given, it stays as it was (a new schedule leaves both)."""
    left = set(current)
    for name in NODE_DEFAULT_FIELDS:
        if name in changes:
            if changes[name] is None:
                left.add(name)
            else:
                left.discard(name)
    return tuple(name for name in NODE_DEFAULT_FIELDS if name in left)


def _settable_values(
    changes: Mapping[str, Any], timezone: str, retry: RetryPolicy | None
) -> dict[str, Any]:
    """The validated values of ``changes``; ``timezone`` and ``retry``: the record's
    current ones (an instant is read in the timezone, a partial retry merged over it)."""
    unknown = set(changes) - set(SETTABLE_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    c = dict(changes)
    values: dict[str, Any] = {}
    if "task" in c:
        if not isinstance(c["task"], str) or not c["task"].strip():
            raise ValidationError("task must be a non-empty task name", field="task")
        values["task"] = check_text(c["task"].strip(), "task")
    if "schedule" in c:
        if not isinstance(c["schedule"], str):
            raise ScheduleError(
                "schedule must be an expression such as '0 2 * * *', '5m' or 'manual', "
                f"not {echo(c['schedule'])}"
            )
        if not c["schedule"].strip():
            raise ScheduleError("schedule must be a non-empty expression")
        try:
            values["schedule"] = check_text(c["schedule"].strip(), "schedule")
        except ValidationError as exc:
            raise ScheduleError(str(exc)) from None
    for key in ("name", "description"):
        if key in c:
            if c[key] is None:
                c[key] = ""
            if not isinstance(c[key], str):
                raise ValidationError(f"{key} must be a string", field=key)
            values[key] = check_text(
                c[key], key, MAX_DESCRIPTION if key == "description" else MAX_SHORT_TEXT
            )
    if "timezone" in c:
        if not isinstance(c["timezone"], str):
            raise ScheduleError(
                "timezone must be an IANA zone name such as 'Europe/Paris'", field="timezone"
            )
        validate_timezone(c["timezone"])
        values["timezone"] = c["timezone"]
    tz = values.get("timezone", timezone)
    for key in ("start_at", "end_at"):
        if key in c:
            values[key] = parse_instant(c[key], key, tz)
    if values.get("start_at") is not None:
        values["anchor"] = start_anchor(c["start_at"], tz, values["start_at"])
    for key in ("data", "metadata"):
        if key in c:
            values[key] = json_object(c[key], key)
    if "jitter" in c:
        values["jitter"] = seconds(c["jitter"] or 0, "jitter")
    if "paused" in c:
        if not isinstance(c["paused"], bool):
            raise ValidationError("paused must be true or false", field="paused")
        values["paused"] = c["paused"]
    if "overlap" in c:
        values["overlap"] = _choice(c["overlap"], "overlap", OVERLAP_POLICIES)
    if "catchup" in c:
        values["catchup"] = _choice(c["catchup"], "catchup", CATCHUP_POLICIES)
    if "catchup_spread" in c:
        values["catchup_spread"] = seconds(c["catchup_spread"], "catchup_spread")
    if "misfire_grace" in c:
        values["misfire_grace"] = seconds(c["misfire_grace"], "misfire_grace")
    if "max_instances" in c:
        values["max_instances"] = integer(
            c["max_instances"], "max_instances", minimum=1, maximum=MAX_INSTANCES
        )
    if "max_executions" in c:
        values["max_executions"] = integer(
            c["max_executions"],
            "max_executions",
            minimum=1,
            maximum=MAX_EXECUTIONS,
            optional=True,
        )
    # None: left to the node that executes each run (see ``node_defaults``); the record
    # keeps tickwork's defaults until the scheduler fills in its own.
    if "retry" in c:
        values["retry"] = RetryPolicy() if c["retry"] is None else parse_retry(c["retry"], retry)
    if "timeout" in c:
        values["timeout"] = (
            DEFAULT_TIMEOUT
            if c["timeout"] is None
            else seconds(c["timeout"], "timeout", allow_zero=False)
        )
    if "priority" in c:
        values["priority"] = integer(
            c["priority"], "priority", minimum=-MAX_PRIORITY, maximum=MAX_PRIORITY
        )
    for key in ("result_queue", "error_queue", "owner"):
        if key in c:
            values[key] = _optional_str(c[key], key)
    if "tags" in c:
        values["tags"] = _tags(c["tags"])
    return values


def _check(result: Schedule, now: datetime) -> ParsedSchedule:
    """Refuse a record that misses its task or expression, or whose expression does not
    parse (now, not at fire time); the parsed expression."""
    if not result.task:
        raise ValidationError("task is required", field="task")
    if not result.schedule:
        raise ScheduleError("schedule is required")
    if result.start_at and result.end_at and result.end_at < result.start_at:
        raise ValidationError("end_at is before start_at", field="end_at")
    # Cached under the key the engine looks up at the schedule's fires (see
    # ``engine.runtime.parsed_schedule``): its first fire does not parse it again.
    return parse_stored(
        result.schedule, result.timezone, result.start_at, result.id, result.anchor or now
    )


def field_problems(changes: Mapping[str, Any], timezone: str = "UTC") -> dict[str, str]:
    """Every field of ``changes`` that ``build_schedule`` would refuse, with why, each
    checked on its own: a build stops at the first, a form names them all at once.

    Keyed by the field each error names (``retry.delay``, ``end_at``); instants are read
    in the zone ``changes`` gives, else in ``timezone``. Fields valid one by one are
    also checked together: the end after the start, the expression from the start."""
    problems: dict[str, str] = {}

    def check(part: Mapping[str, Any], zone: str, key: str) -> dict[str, Any]:
        try:
            return _settable_values(part, zone, None)
        except (ValidationError, ScheduleError) as exc:
            problems.setdefault(exc.field or key, str(exc))
            return {}

    values: dict[str, Any] = {}
    if "timezone" in changes:
        values.update(check({"timezone": changes["timezone"]}, timezone, "timezone"))
    zone = values.get("timezone", timezone)
    for key, value in changes.items():
        if key == "timezone":
            continue
        if key == "retry" and isinstance(value, Mapping) and value:
            for name, part in value.items():  # each of its settings named on its own
                check({key: {name: part}}, zone, key)
            continue
        values.update(check({key: value}, zone, key))
    start, end = values.get("start_at"), values.get("end_at")
    if start is not None and end is not None and end < start:
        problems.setdefault("end_at", "end_at is before start_at")
    expr = values.get("schedule")
    if expr:  # from the start, in the fallback zone when the one given is refused
        try:
            parse_schedule(expr, timezone=zone, start_at=start)
        except ScheduleError as exc:
            problems.setdefault(exc.field, str(exc))
    return problems


def start_wall_of(schedule: Schedule) -> datetime | None:
    """The wall time in a DST gap a schedule's ``start_at`` was written as, if it was."""
    if schedule.start_at is None or schedule.anchor is None:
        return None
    zone = zone_for(validate_timezone(schedule.timezone))
    return wall_of_anchor(schedule.start_at, schedule.anchor, zone)


def _is_wall(value: Any) -> bool:
    """Whether a given ``start_at`` is a wall time (naive), not an instant."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return False
    return isinstance(value, datetime) and value.utcoffset() is None


def differing_changes(
    current: Schedule, changes: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The ``changes`` that would change ``current``. An update that gives a field its
    present value again changes nothing: the same ``PUT`` twice, an edit form saved
    unchanged or a deploy applying its settings again makes no new version, no audit
    entry, and does not restart an interval from now for a ``start_at`` given again.
    All of ``changes`` when they do not apply (their error is then the update's)."""
    try:
        after = build_schedule(current, changes, now)
    except (ValidationError, ScheduleError):
        return dict(changes)

    def differs(name: str) -> bool:
        if not hasattr(current, name):
            return True
        if name in NODE_DEFAULT_FIELDS:
            left = (name in after.node_defaults, name in current.node_defaults)
            if left != (False, False):
                return left != (True, True)
        if name == "start_at" and after.start_at == current.start_at:
            # The same instant. Written with an offset (as read back), it changes
            # nothing; written as a wall time, it changes the wall time an interval
            # keeps when that differs (02:30 in a DST gap, or 03:00 right after it).
            return _is_wall(changes[name]) and start_wall_of(after) != start_wall_of(current)
        return bool(getattr(after, name) != getattr(current, name))

    return {name: value for name, value in changes.items() if differs(name)}
