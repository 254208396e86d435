"""``/api/v1``: validate, tasks, queues, stats, nodes, audit and tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tickwork.api import access, access_admin, paging
from tickwork.api.auth import CallerDep
from tickwork.api.known_query import known_query_only
from tickwork.api.routes import ERROR_RESPONSES
from tickwork.api.schemas import (
    AuditOut,
    NodeOut,
    Page,
    QueueMessageOut,
    StatsOut,
    TaskOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    ValidateBody,
    ValidateOut,
)
from tickwork.engine.scheduler import Scheduler
from tickwork.engine.tokens import parse_expiry
from tickwork.schedule import parse_schedule
from tickwork.validation import parse_instant

router = APIRouter(responses=ERROR_RESPONSES, dependencies=[Depends(known_query_only)])


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


@router.post("/validate", response_model=ValidateOut, tags=["schedules"])
async def validate(body: ValidateBody, caller: CallerDep, request: Request) -> ValidateOut:
    """Check an expression: its kind, its description and its next fire times (422
    with the message naming the bad part when it is invalid)."""
    now = _scheduler(request).clock.now()
    parsed = parse_schedule(body.schedule, timezone=body.timezone, now=now)
    times: list[datetime] = []
    # From ``now`` on, included: "now" and an interval's first fire (its anchor, now)
    # are due at once, as a schedule made with this expression now would fire.
    t = parsed.next_after(now - timedelta(microseconds=1))
    while t is not None and len(times) < body.count:
        times.append(t)
        t = parsed.next_after(t)
    return ValidateOut.model_validate(
        {"valid": True, "kind": parsed.kind, "description": parsed.describe(), "next": times}
    )


@router.get("/tasks", response_model=Page[TaskOut], tags=["tasks"])
async def list_tasks(
    caller: CallerDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[TaskOut]:
    """Tasks a schedule may name (registered here or published by any node), with
    their parameters, by name."""
    specs = await access.list_tasks(_scheduler(request), caller)
    page, more = paging.name_page("t", specs, lambda s: s.name, cursor, limit)
    return Page[TaskOut](items=[TaskOut.of(s) for s in page], next_cursor=more)


@router.get("/queues/{name}/messages", response_model=Page[QueueMessageOut], tags=["queues"])
async def read_queue(
    name: str,
    caller: CallerDep,
    request: Request,
    consume: bool = False,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[QueueMessageOut]:
    """Results or errors put on a queue by the caller's schedules, oldest first, a page
    at a time; ``consume=true`` removes the messages returned."""
    after = paging.queue_cursor(cursor) or 0
    found, more = await access.read_queue(_scheduler(request), caller, name, consume, limit, after)
    return Page[QueueMessageOut](
        items=[QueueMessageOut.of(m) for m in found],
        next_cursor=paging.encode("q", found[-1].id) if more and found else None,
    )


@router.get("/stats", response_model=StatsOut, tags=["stats"])
async def stats(caller: CallerDep, request: Request) -> StatsOut:
    """Per task: runs, success rate, p50/p95 duration; runs and schedules per status."""
    return StatsOut.model_validate(await access.stats(_scheduler(request), caller))


@router.get("/nodes", response_model=Page[NodeOut], tags=["stats"])
async def nodes(
    caller: CallerDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[NodeOut]:
    """Running nodes, with the leader and how many runs each is running, by id."""
    found = await access.nodes(_scheduler(request), caller)
    page, more = paging.name_page("n", found, lambda n: n.id, cursor, limit)
    return Page[NodeOut](items=[NodeOut.of(n) for n in page], next_cursor=more)


@router.get("/audit", response_model=Page[AuditOut], tags=["audit"])
async def audit(
    caller: CallerDep,
    request: Request,
    actor: paging.Filter = None,
    target: Annotated[
        str | None, Query(description="kind:id (schedule:daily) or a bare id", min_length=1)
    ] = None,
    since: Annotated[str | None, Query(description="ISO-8601", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[AuditOut]:
    """Every change, newest first (admin)."""
    found = await access_admin.audit_log(
        _scheduler(request),
        caller,
        actor=actor,
        target=target,
        since=None if since is None else parse_instant(since, "since"),
        before_id=paging.audit_cursor(cursor),
        limit=limit + 1,
    )
    more = len(found) > limit
    items = found[:limit]
    last = items[-1].id if items else None
    return Page[AuditOut](
        items=[AuditOut.of(e) for e in items],
        next_cursor=paging.encode("a", last) if more and last is not None else None,
    )


@router.post("/tokens", status_code=201, response_model=TokenCreated, tags=["tokens"])
async def create_token(body: TokenCreate, caller: CallerDep, request: Request) -> TokenCreated:
    """Make an API token (admin); the secret is in this answer only."""
    scheduler = _scheduler(request)
    expires = None if body.expires is None else parse_expiry(body.expires, scheduler.clock.now())
    token, secret = await access_admin.create_token(
        scheduler,
        caller,
        body.user,
        admin=body.admin,
        read_only=body.read_only,
        expires_in=expires,
    )
    return TokenCreated(**TokenOut.of(token).model_dump(), token=secret)


@router.get("/tokens", response_model=Page[TokenOut], tags=["tokens"])
async def list_tokens(caller: CallerDep, request: Request) -> Page[TokenOut]:
    """Tokens not revoked (admin): id, user, role, created, last used, expiry."""
    found = await access_admin.list_tokens(_scheduler(request), caller)
    return Page[TokenOut](items=[TokenOut.of(t) for t in found], next_cursor=None)


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["tokens"])
async def revoke_token(token_id: str, caller: CallerDep, request: Request) -> TokenOut:
    """Revoke a token (admin); it is refused from the next request on."""
    return TokenOut.of(await access_admin.revoke_token(_scheduler(request), caller, token_id))
