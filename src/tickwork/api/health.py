"""``GET /health``: 200 when the database answers and the engine runs, 503 otherwise.

For load balancers and orchestrators: no credentials needed, and the answer says no
more than whether this process can serve (the database's URL and errors stay in the
log). ``engine`` is ``ok`` while ``serve``'s engine process runs its node, ``down``
while it is being restarted (503), ``none`` for an API without an engine of its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import tickwork
from tickwork.api.engine_status import engine_state, leads
from tickwork.errors import StoreError

router = APIRouter(tags=["monitoring"])
log = logging.getLogger("tickwork.api")

#: Seconds the database has to answer before the check fails.
TIMEOUT: Final = 3.0


@router.api_route(
    "/health",
    methods=["GET", "HEAD"],  # load balancers' checks often send HEAD
    summary="Health: is the database reachable?",
    responses={503: {"description": "The database does not answer."}},
)
async def health(request: Request) -> JSONResponse:
    """`{"status": "ok", ...}` with 200 when the database answers within 3 seconds and
    the engine runs; `{"status": "unavailable", ...}` with 503 otherwise."""
    scheduler = request.app.state.scheduler
    state = engine_state(request.app, scheduler)
    engine = scheduler.engine
    body: dict[str, Any] = {
        "version": tickwork.__version__,
        "node": state.node,
        "engine": "none" if not state.present else "ok" if state.alive else "down",
    }

    def check() -> tuple[int, bool]:
        version = scheduler.store.schema_version()
        if engine is not None:
            return version, bool(engine.is_leader)
        return version, state.alive and leads(scheduler.store, state.node)

    try:
        version, leader = await asyncio.wait_for(asyncio.to_thread(check), TIMEOUT)
    except (StoreError, TimeoutError) as exc:
        log.warning(
            "health check: the database does not answer: %s",
            str(exc) or f"no answer in {TIMEOUT:g} s",
        )
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "leader": False, **body},
            status_code=503,
        )
    body["leader"] = leader
    if state.present and not state.alive:
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "schema_version": version, **body},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "schema_version": version, **body})
