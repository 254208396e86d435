"""``/api/v1/schedules``: create, read, change, delete, pause, resume, run, backfill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from tickwork.api import access, access_admin, paging
from tickwork.api.auth import Caller, CallerDep
from tickwork.api.encode import json_response, schedule_json
from tickwork.api.errors import check_body_with
from tickwork.api.if_match import IfMatch
from tickwork.api.known_query import known_query_only
from tickwork.api.routes import ERROR_RESPONSES
from tickwork.api.schemas import (
    BackfillBody,
    BackfillOut,
    NextOut,
    Page,
    PauseBody,
    PausedOut,
    RunBody,
    RunOut,
    ScheduleCreate,
    ScheduleFields,
    ScheduleOut,
    ScheduleReplace,
    ScheduleStatusName,
)
from tickwork.engine.facade import schedule_problems
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import FieldProblem, PreconditionFailedError
from tickwork.models import Schedule
from tickwork.store.records import ScheduleFilter
from tickwork.validation import SETTABLE_FIELDS

router = APIRouter(
    tags=["schedules"], responses=ERROR_RESPONSES, dependencies=[Depends(known_query_only)]
)

IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag of GET /schedules/{id} (or a comma-separated list of "
        "ETags, or *): the change is refused with 412 unless one of them matches the "
        "schedule's current ETag by strong comparison (RFC 9110), so a change made "
        'since it was read is never silently undone. A weak ETag (W/"3") never matches.',
    ),
]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


def etag(s: Schedule) -> str:
    return f'"{s.version}"'


def _with_etag(s: Schedule, status_code: int = 200, created: bool = False) -> Response:
    """The schedule's body (``ScheduleOut``) with its ``ETag`` (and ``Location`` when
    ``created``)."""
    headers = {"ETag": etag(s)}
    if created:
        headers["Location"] = f"/api/v1/schedules/{s.id}"
    return json_response(schedule_json(s), status_code, headers)


async def _rest_of_new(
    request: Request, body: Mapping[str, Any], refused: frozenset[str]
) -> list[FieldProblem]:
    """The problems of a new schedule's fields whose shape was right (POST, PUT)."""
    fields = {
        k: v for k, v in body.items() if k in SETTABLE_FIELDS and k not in refused and v is not None
    }
    given_id = (
        body.get("id") if "id" not in refused and "schedule_id" not in request.path_params else None
    )
    return await schedule_problems(_scheduler(request), fields, schedule_id=given_id)


async def _rest_of_changes(
    request: Request, body: Mapping[str, Any], refused: frozenset[str]
) -> list[FieldProblem]:
    """The problems of a change's fields whose shape was right (PATCH; read in UTC,
    and data checked only against a task it names)."""
    fields = {k: v for k, v in body.items() if k in SETTABLE_FIELDS and k not in refused}
    return await schedule_problems(_scheduler(request), fields)


@router.post("/schedules", status_code=201, response_model=ScheduleOut)
@check_body_with(_rest_of_new)
async def create_schedule(body: ScheduleCreate, caller: CallerDep, request: Request) -> Response:
    """Create a schedule owned by the caller (an admin may set ``owner``)."""
    fields = body.changes()
    fields["task"], fields["schedule"] = body.task, body.schedule
    s = await access.create_schedule(_scheduler(request), caller, fields)
    return _with_etag(s, 201, created=True)


@router.get("/schedules", response_model=Page[ScheduleOut])
async def list_schedules(
    caller: CallerDep,
    request: Request,
    status: ScheduleStatusName | None = None,
    task: paging.Filter = None,
    tag: paging.Filter = None,
    owner: paging.Filter = None,
    q: Annotated[str | None, Query(description="Search in id, name, description, task")] = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response:
    """The caller's schedules by id, a page at a time."""
    return await schedule_page(
        request.app, caller, status=status, task=task, tag=tag, owner=owner, q=q,
        limit=limit, cursor=cursor,
    )  # fmt: skip


async def schedule_page(
    app: Any,
    caller: Caller,
    *,
    status: ScheduleStatusName | None = None,
    task: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    q: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response:
    """The response of ``GET /schedules`` (``app``: the API's FastAPI app)."""
    filters = ScheduleFilter(
        status, task, tag, owner, q, after_id=paging.schedule_cursor(cursor), limit=limit
    )
    state = app.state
    body = await access.list_schedules_json(state.scheduler, caller, state.schedule_bodies, filters)
    return json_response(body)


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: str, caller: CallerDep, request: Request) -> Response:
    """A schedule; its ``ETag`` goes in ``If-Match`` of a later change."""
    return await schedule_one(request.app, caller, schedule_id)


async def schedule_one(app: Any, caller: Caller, schedule_id: str) -> Response:
    """The response of ``GET /schedules/{id}`` (``app``: the API's FastAPI app)."""
    body = await access.get_schedule_body(
        app.state.scheduler, caller, app.state.schedule_bodies, schedule_id
    )
    return json_response(body.json, 200, {"ETag": f'"{body.version}"'})


@router.put(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    responses={201: {"model": ScheduleOut, "description": "Created"}},
)
@check_body_with(_rest_of_new)
async def put_schedule(
    schedule_id: str,
    body: ScheduleReplace,
    caller: CallerDep,
    request: Request,
    if_match: IfMatchHeader = None,
) -> Response:
    """Create the schedule with this id (201), or replace all its settings (200):
    fields left out go back to their defaults."""
    condition = IfMatch.parse(if_match)
    fields = body.changes()
    fields["task"], fields["schedule"] = body.task, body.schedule
    s, created = await access.replace_schedule(
        _scheduler(request), caller, schedule_id, fields, condition
    )
    return _with_etag(s, 201 if created else 200, created=created)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut)
@check_body_with(_rest_of_changes)
async def patch_schedule(
    schedule_id: str,
    body: ScheduleFields,
    caller: CallerDep,
    request: Request,
    if_match: IfMatchHeader = None,
) -> Response:
    """Change the fields given; the others keep their values."""
    s = await access.update_schedule(
        _scheduler(request), caller, schedule_id, body.changes(), IfMatch.parse(if_match)
    )
    return _with_etag(s)


@router.delete("/schedules/{schedule_id}", status_code=204, response_class=Response)
async def delete_schedule(
    schedule_id: str, caller: CallerDep, request: Request, if_match: IfMatchHeader = None
) -> Response:
    """Delete a schedule: its waiting runs are cancelled, its history is kept."""
    await access.delete_schedule(_scheduler(request), caller, schedule_id, IfMatch.parse(if_match))
    return Response(status_code=204)


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleOut)
async def pause_schedule(
    schedule_id: str,
    caller: CallerDep,
    request: Request,
    body: PauseBody | None = None,
    if_match: IfMatchHeader = None,
) -> Response:
    """Stop new fires (runs already waiting or running go on); ``reason`` is recorded."""
    s = await access.pause_schedule(
        _scheduler(request),
        caller,
        schedule_id,
        None if body is None else body.reason,
        IfMatch.parse(if_match),
    )
    return _with_etag(s)


@router.post("/schedules/{schedule_id}/resume", response_model=ScheduleOut)
async def resume_schedule(
    schedule_id: str,
    caller: CallerDep,
    request: Request,
    body: PauseBody | None = None,
    if_match: IfMatchHeader = None,
) -> Response:
    """Fire again from now on (fire times passed while paused are not caught up)."""
    s = await access.resume_schedule(
        _scheduler(request),
        caller,
        schedule_id,
        None if body is None else body.reason,
        IfMatch.parse(if_match),
    )
    return _with_etag(s)


@router.post("/schedules/{schedule_id}/run", status_code=202, response_model=RunOut)
async def run_schedule(
    schedule_id: str,
    caller: CallerDep,
    request: Request,
    body: RunBody | None = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="The same key within 24 hours returns the same run.",
        ),
    ] = None,
    traceparent: Annotated[
        str | None,
        Header(
            max_length=512,
            description="W3C trace context: the run joins the caller's trace, its attempts' "
            "spans under the caller's span (stored as the run's trace_id and parent_span_id).",
        ),
    ] = None,
    if_match: IfMatchHeader = None,
) -> Response:
    """Run now, outside the schedule; ``data`` is merged over the schedule's."""
    run = await access.run_schedule(
        _scheduler(request),
        caller,
        schedule_id,
        None if body is None else body.data,
        idempotency_key,
        traceparent,
        IfMatch.parse(if_match),
    )
    return json_response(RunOut.of(run), 202)


@router.post("/schedules/{schedule_id}/backfill", response_model=BackfillOut)
async def backfill(
    schedule_id: str,
    body: BackfillBody,
    caller: CallerDep,
    request: Request,
    if_match: IfMatchHeader = None,
) -> BackfillOut:
    """A run for every past fire time in [start, end] that has none yet."""
    runs = await access.backfill(
        _scheduler(request), caller, schedule_id, body.start, body.end, IfMatch.parse(if_match)
    )
    return BackfillOut(created=len(runs), runs=[RunOut.of(r) for r in runs])


@router.get("/schedules/{schedule_id}/next", response_model=NextOut)
async def next_fire_times(
    schedule_id: str,
    caller: CallerDep,
    request: Request,
    count: Annotated[int, Query(ge=1, le=1000)] = 5,
    after: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Only fire times strictly after this instant (naive: in the "
            "schedule's zone).",
        ),
    ] = None,
) -> NextOut:
    """The schedule's next fire times (none when paused or finished)."""
    times = await access.next_fire_times(
        _scheduler(request), caller, schedule_id, count, after=after
    )
    return NextOut(schedule_id=schedule_id, next=times)


NoIfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="Refused with 412: an ETag is the version of one schedule, and this "
        "changes them all (send If-Match to /schedules/{id}/pause or /resume).",
    ),
]


def _no_if_match(caller: Caller, if_match: str | None, path: str) -> None:
    """A condition on every schedule at once cannot hold: refused rather than ignored
    (after the checks of who may ask, which answer first)."""
    access.require_admin(caller)
    access.require_write(caller)
    if if_match is not None:
        raise PreconditionFailedError(
            f"If-Match {if_match!r} names a version of one schedule, and POST {path} "
            "changes every schedule, which has no ETag: nothing was changed (send "
            "If-Match to POST /schedules/{id}" + path + " for one schedule)"
        )


@router.post("/pause", response_model=PausedOut)
async def pause_all(
    caller: CallerDep,
    request: Request,
    body: PauseBody | None = None,
    if_match: NoIfMatchHeader = None,
) -> PausedOut:
    """Pause every schedule (admin)."""
    _no_if_match(caller, if_match, "/pause")
    ids = await access_admin.pause_all(
        _scheduler(request), caller, None if body is None else body.reason
    )
    return PausedOut(changed=len(ids), ids=ids)


@router.post("/resume", response_model=PausedOut)
async def resume_all(
    caller: CallerDep,
    request: Request,
    body: PauseBody | None = None,
    if_match: NoIfMatchHeader = None,
) -> PausedOut:
    """Resume every schedule (admin)."""
    _no_if_match(caller, if_match, "/resume")
    ids = await access_admin.resume_all(
        _scheduler(request), caller, None if body is None else body.reason
    )
    return PausedOut(changed=len(ids), ids=ids)
