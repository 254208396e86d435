"""``/api/v1/runs`` and ``/api/v1/schedules/{id}/runs``: history, one run, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from tickwork.api import access, paging
from tickwork.api.auth import CallerDep
from tickwork.api.encode import json_response
from tickwork.api.known_query import known_query_only
from tickwork.api.routes import ERROR_RESPONSES
from tickwork.api.schemas import Page, RunOut, RunStatusName
from tickwork.engine.scheduler import Scheduler
from tickwork.models import Run
from tickwork.validation import parse_instant

router = APIRouter(
    tags=["runs"], responses=ERROR_RESPONSES, dependencies=[Depends(known_query_only)]
)

Limit = Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)]


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


def _page(found: list[Run], limit: int) -> Response:
    more = len(found) > limit
    items = found[:limit]
    last = items[-1] if items else None
    return json_response(
        Page[RunOut](
            items=[RunOut.of(r) for r in items],
            next_cursor=paging.run_key(last.scheduled_for, last.id) if more and last else None,
        )
    )


@router.get("/runs", response_model=Page[RunOut])
async def list_runs(
    caller: CallerDep,
    request: Request,
    schedule: str | None = None,
    task: paging.Filter = None,
    status: RunStatusName | None = None,
    since: Annotated[
        str | None, Query(description="ISO-8601; scheduled_for >= since", max_length=64)
    ] = None,
    until: Annotated[
        str | None, Query(description="ISO-8601; scheduled_for < until", max_length=64)
    ] = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response:
    """The caller's runs, newest scheduled time first, with their attempts."""
    found = await access.list_runs(
        _scheduler(request),
        caller,
        schedule_id=schedule,
        task=task,
        status=status,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        before=paging.run_cursor(cursor),
        limit=limit + 1,
    )
    return _page(found, limit)


@router.get("/schedules/{schedule_id}/runs", response_model=Page[RunOut])
async def schedule_runs(
    schedule_id: str,
    caller: CallerDep,
    request: Request,
    status: RunStatusName | None = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response:
    """One schedule's runs, newest first."""
    found = await access.list_runs(
        _scheduler(request),
        caller,
        schedule_id=schedule_id,
        status=status,
        before=paging.run_cursor(cursor),
        limit=limit + 1,
    )
    return _page(found, limit)


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: str, caller: CallerDep, request: Request) -> Response:
    """A run with its attempts and the log lines its task emitted."""
    return json_response(RunOut.of(await access.get_run(_scheduler(request), caller, run_id)))


@router.post("/runs/{run_id}/cancel", response_model=RunOut)
async def cancel_run(run_id: str, caller: CallerDep, request: Request) -> Response:
    """Cancel a waiting run at once, or ask the node running it to stop it."""
    return json_response(RunOut.of(await access.cancel_run(_scheduler(request), caller, run_id)))


def _aware(value: str | None, field: str) -> datetime | None:
    return None if value is None else parse_instant(value, field)
