"""Scoping and permissions: the one place that decides what a caller may see and do.

Every read and write of the REST API and of the dashboard goes through these
functions, which take ``(scheduler, caller, ...)`` and call the ``Scheduler``:

- a user sees, changes, runs and cancels only the schedules they own and their runs;
  another user's schedule or run raises ``NotFoundError`` exactly as a missing one;
- a read-only caller's write raises ``PermissionDeniedError`` (403);
- admins see everything, may set a schedule's ``owner``, and alone may pause or
  resume everything, read the audit log and manage tokens (those calls are in
  ``tickwork.api.access_admin``).

Changes are made ``acting_as`` the caller, so the audit log names them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from tickwork.api.auth import Caller
from tickwork.api.bodies import Body, ScheduleBodies
from tickwork.api.encode import page_json
from tickwork.api.if_match import IfMatch
from tickwork.engine.audit import acting_as
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ValidationError,
)
from tickwork.models import (
    AuditEntry,
    Node,
    QueueMessage,
    RetryPolicy,
    Run,
    RunStatus,
    Schedule,
    ScheduleStatus,
    TaskSpec,
)
from tickwork.store.records import ScheduleFilter
from tickwork.validation import SETTABLE_FIELDS, differing_changes

_T = TypeVar("_T")

#: How many of an id's newest audit entries are read for whose schedule it was last
#: (the newest that holds the schedule: its deletion's).
_HISTORY_LOOK = 20

#: What ``PUT`` resets a field it does not give to: a new schedule's value (retry and
#: timeout: None, left to the node that runs it, unless the task declares its own:
#: ``_task_defaults``).
_DEFAULTS: dict[str, Any] = {
    name: getattr(Schedule(id="x", task="x", schedule="x"), name)
    for name in SETTABLE_FIELDS
    if name not in ("task", "schedule", "owner")
} | {"retry": None, "timeout": None}


def require_write(caller: Caller) -> None:
    if caller.read_only:
        raise PermissionDeniedError("this token is read-only: it may not change anything")


def require_admin(caller: Caller) -> None:
    if not caller.admin:
        raise PermissionDeniedError("only an admin may do this")


def _mine(caller: Caller, s: Schedule) -> bool:
    return caller.admin or s.owner == caller.user


def can_see_event(caller: Caller, owner: str | None) -> bool:
    """Events follow their schedule's scoping: an admin receives all, a user those of
    the schedules they owned when the event happened."""
    return caller.admin or (owner is not None and owner == caller.user)


def _owner_filter(caller: Caller) -> str | None:
    return None if caller.admin else caller.user


# -- schedules ---------------------------------------------------------------------------


async def get_schedule(scheduler: Scheduler, caller: Caller, schedule_id: str) -> Schedule:
    s = await scheduler.get_schedule(schedule_id)
    if not _mine(caller, s):
        raise NotFoundError("schedule", schedule_id)
    return s


async def get_schedule_body(
    scheduler: Scheduler, caller: Caller, bodies: ScheduleBodies, schedule_id: str
) -> Body:
    """``get_schedule``'s schedule as its serialized body (see ``api/bodies.py``)."""
    body = await bodies.one(scheduler, schedule_id)
    if body is None or not (caller.admin or body.owner == caller.user):
        raise NotFoundError("schedule", schedule_id)
    return body


async def list_schedules_json(
    scheduler: Scheduler, caller: Caller, bodies: ScheduleBodies, filters: ScheduleFilter
) -> bytes:
    """The body of ``list_schedules``' page for ``filters`` (``filters.limit``: the
    page's size) within the caller's schedules (see ``api/bodies.py``)."""
    if not caller.admin:
        if filters.owner is not None and filters.owner != caller.user:
            return page_json([], None)
        filters = filters.replace(owner=caller.user)
    return await bodies.page_json(scheduler, filters)


def _owner_of_new(caller: Caller, fields: Mapping[str, Any]) -> str:
    owner = fields.get("owner")
    if owner is None or owner == caller.user:
        return caller.user
    _check_new_owner(caller, owner)
    return str(owner)


def _check_new_owner(caller: Caller, owner: Any) -> None:
    """A schedule may pass to another user only by an admin, and only to a user: an
    owner that is null or blank would leave it to nobody but the admins."""
    if not caller.admin:
        raise PermissionDeniedError("only an admin may set a schedule's owner")
    if not isinstance(owner, str) or not owner.strip():
        raise ValidationError(
            f"owner must be a user name, not {json.dumps(owner)}: a schedule always has one",
            field="owner",
        )


async def create_schedule(
    scheduler: Scheduler, caller: Caller, fields: Mapping[str, Any]
) -> Schedule:
    """A new schedule owned by the caller (or by ``owner``, for an admin)."""
    require_write(caller)
    changes = {k: v for k, v in fields.items() if v is not None}
    changes["owner"] = _owner_of_new(caller, fields)
    if not caller.admin and isinstance(fields.get("id"), str):
        await _check_not_anothers_history(scheduler, caller, fields["id"])
    task = changes.pop("task", None)
    expression = changes.pop("schedule", None)
    schedule_id = changes.pop("id", None)
    with acting_as(caller.user):
        return await scheduler.add_schedule(task, expression, id=schedule_id, **changes)


async def _check_not_anothers_history(
    scheduler: Scheduler, caller: Caller, schedule_id: str
) -> None:
    """Refuse (409, as a taken id) a user's new schedule with the id of another user's
    deleted one while its history is kept.

    A deleted schedule's runs, their results and logs, and its audit entries stay under
    its id until ``retention_days``, and a user sees them through the schedule of that
    id they own: a new schedule of the id would hand them to whoever made it. Whose
    the id was is read from its newest audit entry that holds the schedule (its
    deletion's); history with no entry to say (kept runs, the audit log cleared by
    hand) is taken as another user's. An admin, who sees all history anyway, may make
    it (for any owner, as they may transfer a schedule)."""
    try:
        await scheduler.get_schedule(schedule_id)
        return  # the create meets it as a taken id, saying nothing of whose it is
    except NotFoundError:
        pass
    entries = await scheduler.audit_log(target=f"schedule:{schedule_id}", limit=_HISTORY_LOOK)
    owners = [
        record["owner"]
        for e in entries
        for record in (e.after, e.before)
        if isinstance(record, dict) and isinstance(record.get("owner"), str)
    ]
    if owners:
        if owners[0] == caller.user:
            return
    elif not entries and not await scheduler.list_runs(schedule_id, None, 1):
        return  # nothing kept under this id: free for anyone
    raise ConflictError(
        f"schedule id {schedule_id!r} is taken: the history of a deleted schedule of"
        " another user is kept under it (until retention_days); choose another id"
    )


async def replace_schedule(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    fields: Mapping[str, Any],
    condition: IfMatch | None = None,
) -> tuple[Schedule, bool]:
    """``PUT``: create the schedule with this id, or replace all its settings (fields
    not given go back to their defaults). Returns it and whether it was created.

    Another user's schedule answers as a missing one: a conditional ``PUT``
    (``If-Match``) is refused with 412, an unconditional one is the create it stands
    for, which meets the taken id exactly as ``POST /schedules`` with that id does
    (409: ids are shared by all users). Neither says whose the id is, nor anything of
    the schedule that has it."""
    require_write(caller)
    current: Schedule | None = None
    for attempt in (1, 2):
        try:
            current = await scheduler.get_schedule(schedule_id)
        except NotFoundError:
            current = None
        if current is not None and _mine(caller, current):
            break
        if condition is not None:
            raise PreconditionFailedError(f"schedule {schedule_id!r} does not exist (If-Match)")
        try:
            created = await create_schedule(scheduler, caller, {**fields, "id": schedule_id})
        except ConflictError:
            if attempt == 2:
                raise
            continue  # created since it was read (by a PUT racing this one?): read again
        return created, True
    assert current is not None
    changes: dict[str, Any] = dict(_DEFAULTS)
    changes.update(await _task_defaults(scheduler, fields.get("task")))
    # null is a field left out, as in a create (``create_schedule``).
    changes.update({k: v for k, v in fields.items() if v is not None})
    if isinstance(fields.get("retry"), Mapping):
        # The whole policy, as a create reads it: the keys not given are the defaults,
        # not merged over the policy the schedule had.
        changes["retry"] = {**RetryPolicy().to_dict(), **fields["retry"]}
    changes.pop("id", None)
    owner = fields.get("owner")
    if owner is None:
        changes.pop("owner", None)
    elif owner != current.owner:
        _check_new_owner(caller, owner)
    changes = differing_changes(current, changes, scheduler.clock.now())
    if not changes:  # the same settings again: PUT is idempotent, nothing is written
        if condition is not None:
            condition.version_for(schedule_id, current.version)
        return current, False
    return await _conditional_update(scheduler, caller, current, changes, condition), False


async def _task_defaults(scheduler: Scheduler, task: Any) -> dict[str, Any]:
    """What a new schedule of ``task`` gets for the fields it leaves out beyond
    ``_DEFAULTS`` (the task's own timeout and retries); none for a task not known (the
    update then names it)."""
    if not isinstance(task, str):
        return {}
    try:
        spec = await scheduler.task_spec(task)
    except ValidationError:  # UnknownTaskError among them
        return {}
    return spec.schedule_defaults()


async def update_schedule(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    changes: Mapping[str, Any],
    condition: IfMatch | None = None,
) -> Schedule:
    """``PATCH``: change only the fields given."""
    require_write(caller)
    current = await get_schedule(scheduler, caller, schedule_id)
    if "owner" in changes and changes["owner"] != current.owner:
        _check_new_owner(caller, changes["owner"])
    if not changes:
        if condition is not None:
            condition.version_for(schedule_id, current.version)
        return current
    return await _conditional_update(scheduler, caller, current, changes, condition)


async def _conditional_update(
    scheduler: Scheduler,
    caller: Caller,
    current: Schedule,
    changes: Mapping[str, Any],
    condition: IfMatch | None,
) -> Schedule:
    async def update(expected: int | None) -> Schedule:
        with acting_as(caller.user):
            return await scheduler.update_schedule(current.id, expected_version=expected, **changes)

    return await _if_matching(scheduler, caller, current, condition, update)


async def delete_schedule(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    condition: IfMatch | None = None,
) -> None:
    require_write(caller)
    current = await get_schedule(scheduler, caller, schedule_id)

    async def delete(expected: int | None) -> None:
        with acting_as(caller.user):
            await scheduler.delete_schedule(schedule_id, expected_version=expected)

    await _if_matching(scheduler, caller, current, condition, delete)


async def _if_matching(
    scheduler: Scheduler,
    caller: Caller,
    current: Schedule,
    condition: IfMatch | None,
    change: Callable[[int | None], Awaitable[_T]],
) -> _T:
    """``change(expected_version)`` if ``condition`` holds for the schedule's version.
    The engine refuses a write that meets another version than the one matched; the
    condition is then checked against the newer one, which may match too (a list)."""
    while True:
        expected = None if condition is None else condition.version_for(current.id, current.version)
        try:
            return await change(expected)
        except PreconditionFailedError:
            if expected is None:
                raise
            newer = await get_schedule(scheduler, caller, current.id)
            if newer.version == current.version:
                raise
            current = newer


async def pause_schedule(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    reason: str | None = None,
    condition: IfMatch | None = None,
) -> Schedule:
    return await _set_paused(scheduler, caller, schedule_id, True, reason, condition)


async def resume_schedule(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    reason: str | None = None,
    condition: IfMatch | None = None,
) -> Schedule:
    return await _set_paused(scheduler, caller, schedule_id, False, reason, condition)


async def _set_paused(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    paused: bool,
    reason: str | None,
    condition: IfMatch | None,
) -> Schedule:
    require_write(caller)
    current = await get_schedule(scheduler, caller, schedule_id)
    change = scheduler.pause if paused else scheduler.resume

    async def set_paused(expected: int | None) -> None:
        with acting_as(caller.user, reason):
            await change(schedule_id, expected_version=expected)

    await _if_matching(scheduler, caller, current, condition, set_paused)
    return await scheduler.get_schedule(schedule_id)


async def run_schedule(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    traceparent: str | None = None,
    condition: IfMatch | None = None,
) -> Run:
    """A manual run; the same ``idempotency_key`` from the same user within 24 hours
    returns the run made the first time; ``traceparent`` puts it in the caller's trace;
    with ``condition`` (``If-Match``), made only from a version it matches."""
    require_write(caller)
    current = await get_schedule(scheduler, caller, schedule_id)

    async def run(expected: int | None) -> Run:
        with acting_as(caller.user):
            return await scheduler.run_now(
                schedule_id,
                data=data,
                idempotency_key=idempotency_key,
                traceparent=traceparent,
                expected_version=expected,
            )

    return await _if_matching(scheduler, caller, current, condition, run)


async def backfill(
    scheduler: Scheduler,
    caller: Caller,
    schedule_id: str,
    start: datetime | str,
    end: datetime | str,
    condition: IfMatch | None = None,
) -> list[Run]:
    require_write(caller)
    current = await get_schedule(scheduler, caller, schedule_id)

    async def backfill_runs(expected: int | None) -> list[Run]:
        with acting_as(caller.user):
            return await scheduler.backfill(schedule_id, start, end, expected_version=expected)

    return await _if_matching(scheduler, caller, current, condition, backfill_runs)


async def next_fire_times(
    scheduler: Scheduler, caller: Caller, schedule_id: str, count: int, after: str | None = None
) -> list[datetime]:
    await get_schedule(scheduler, caller, schedule_id)
    return await scheduler.next_fire_times(schedule_id, count, after=after)


# -- runs --------------------------------------------------------------------------------


async def get_run(scheduler: Scheduler, caller: Caller, run_id: str) -> Run:
    """The run if it is the caller's: a run of their schedule, deleted or not (another
    user's answers as a missing one)."""
    return await scheduler.get_run(run_id, owner=_owner_filter(caller))


async def list_runs(
    scheduler: Scheduler,
    caller: Caller,
    *,
    schedule_id: str | None = None,
    task: str | None = None,
    status: RunStatus | Collection[RunStatus] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Run]:
    """The caller's runs, newest first; a schedule the caller cannot see is a 404.

    A deleted schedule's runs are kept, and its owner (and an admin) still finds them
    by its id; an id that names neither a schedule nor a run the caller may see is a
    404."""
    owner = _owner_filter(caller)
    if schedule_id is not None:
        try:
            await get_schedule(scheduler, caller, schedule_id)
        except NotFoundError:
            if not await scheduler.list_runs(schedule_id, None, 1, owner=owner):
                raise
    return await scheduler.list_runs(
        schedule_id,
        status,
        limit,
        task=task,
        since=since,
        until=until,
        before=before,
        owner=owner,
    )


async def cancel_run(scheduler: Scheduler, caller: Caller, run_id: str) -> Run:
    require_write(caller)
    await get_run(scheduler, caller, run_id)
    with acting_as(caller.user):
        return await scheduler.cancel_run(run_id)


# -- the rest ----------------------------------------------------------------------------


async def list_tasks(scheduler: Scheduler, caller: Caller) -> list[TaskSpec]:
    """Tasks registered in this process or published by any node, with their parameters."""
    return [await scheduler.task_spec(name) for name in await scheduler.known_tasks()]


async def read_queue(
    scheduler: Scheduler,
    caller: Caller,
    name: str,
    consume: bool,
    limit: int = 100,
    after: int = 0,
) -> tuple[list[QueueMessage], bool]:
    """A queue's messages of the caller's schedules after the id ``after`` (consuming
    is a write), and whether more follow them."""
    if consume:
        require_write(caller)
    owner = _owner_filter(caller)
    if not consume:  # one more than asked says whether another page follows
        found = await scheduler.read_queue(name, False, limit + 1, owner=owner, after=after)
        return found[:limit], len(found) > limit
    taken = await scheduler.read_queue(name, True, limit, owner=owner, after=after)
    if len(taken) < limit:
        return taken, False
    # Taking one more would remove it unseen: look whether one follows instead.
    rest = await scheduler.read_queue(name, False, 1, owner=owner, after=taken[-1].id)
    return taken, bool(rest)


async def stats(scheduler: Scheduler, caller: Caller) -> dict[str, Any]:
    return await scheduler.stats(owner=_owner_filter(caller))


async def nodes(scheduler: Scheduler, caller: Caller) -> list[Node]:
    found: list[Node] = await scheduler.nodes()
    return found


# -- the dashboard's summaries -----------------------------------------------------------


async def schedule_page(
    scheduler: Scheduler,
    caller: Caller,
    *,
    status: ScheduleStatus | None = None,
    task: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    sort: str = "name",
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Schedule], int]:
    """A page of the caller's schedules (an admin's: everyone's) and how many match."""
    return await scheduler.schedule_page(
        status=status,
        task=task,
        tag=tag,
        owner=_owner_filter(caller),
        q=q,
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit,
    )


async def schedule_ids(
    scheduler: Scheduler,
    caller: Caller,
    *,
    status: ScheduleStatus | None = None,
    task: str | None = None,
    tag: str | None = None,
    q: str | None = None,
) -> list[str]:
    """The ids of the caller's schedules matching the filters (a bulk action's targets)."""
    return await scheduler.schedule_ids(
        status=status, task=task, tag=tag, owner=_owner_filter(caller), q=q
    )


async def count_schedules(scheduler: Scheduler, caller: Caller) -> dict[str, int]:
    return await scheduler.count_schedules(_owner_filter(caller))


async def run_activity(
    scheduler: Scheduler, caller: Caller, since: datetime, bucket_seconds: int
) -> list[tuple[int, str, int, float | None, float | None]]:
    """The caller's runs since ``since`` per bucket and status (counts, durations)."""
    return await scheduler.run_activity(since, bucket_seconds, _owner_filter(caller))


async def recent_runs(
    scheduler: Scheduler, caller: Caller, schedule_ids: Sequence[str], per_schedule: int = 20
) -> dict[str, list[tuple[str, str, datetime]]]:
    """The newest runs of each of the caller's schedules among ``schedule_ids`` (another
    user's has none)."""
    return await scheduler.recent_runs(schedule_ids, per_schedule, _owner_filter(caller))


async def schedule_history(
    scheduler: Scheduler, caller: Caller, schedule_id: str, *, limit: int = 50
) -> list[AuditEntry]:
    """One schedule's entries of the audit log, newest first: its owner reads them too
    (who paused it and why), not only an admin."""
    await get_schedule(scheduler, caller, schedule_id)
    return await scheduler.audit_log(target=f"schedule:{schedule_id}", limit=limit)
