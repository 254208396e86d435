"""``GET /health``: 200 when the database answers and the engine runs, 503 otherwise.

For load balancers and orchestrators: no credentials needed, and the answer says no
more than whether this process can serve (the database's URL and errors stay in the
log). ``engine`` is ``ok`` while ``serve``'s engine process runs its node, ``down``
while it is being restarted (503), ``stalled`` (503) while the process lives but its
node has not renewed its heartbeat for ``lease_ttl`` (its event loop blocked by a task,
say: it fires nothing, and its runs' leases lapse), ``none`` for an API without an
engine of its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import tickwork
from tickwork.api.engine_status import engine_node, engine_state
from tickwork.errors import StoreError
from tickwork.models import Node

router = APIRouter(tags=["monitoring"])
log = logging.getLogger("tickwork.api")

#: Seconds the database has to answer before the check fails.
TIMEOUT: Final = 3.0


@router.api_route(
    "/health",
    methods=["GET", "HEAD"],  # load balancers' checks often send HEAD
    summary="Health: is the database reachable and the engine running?",
    responses={
        503: {"description": "The database does not answer, or the engine is down or stalled."}
    },
)
async def health(request: Request) -> JSONResponse:
    """`{"status": "ok", ...}` with 200 when the database answers within 3 seconds and
    the engine runs and renews its heartbeat; `{"status": "unavailable", ...}` with 503
    otherwise."""
    scheduler = request.app.state.scheduler
    state = engine_state(request.app, scheduler)
    engine = scheduler.engine
    body: dict[str, Any] = {
        "version": tickwork.__version__,
        "node": state.node,
        "engine": "none" if not state.present else "ok" if state.alive else "down",
    }

    store = scheduler.store
    lease_ttl = scheduler.config.lease_ttl

    def check() -> tuple[int, Node | None]:
        return store.schema_version(), engine_node(store, state)

    try:
        version, node = await asyncio.wait_for(asyncio.to_thread(check), TIMEOUT)
    except (StoreError, TimeoutError) as exc:
        log.warning(
            "health check: the database does not answer: %s",
            str(exc) or f"no answer in {TIMEOUT:g} s",
        )
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "leader": False, **body},
            status_code=503,
        )
    if engine is not None:
        body["leader"] = bool(engine.is_leader)
    else:
        body["leader"] = node is not None and node.is_leader
    if state.present and not state.alive:
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "schema_version": version, **body},
            status_code=503,
        )
    if node is not None:
        silent = node.silent_for(scheduler.clock.now())
        lease_ttl = node.lease(lease_ttl)  # as the node registered it
        if silent > lease_ttl:
            log.warning(
                "health check: the engine's node %s has not renewed its heartbeat for"
                " %.1f s (lease_ttl %g s): its event loop is blocked (a task that does not"
                " await?) or it cannot write to the database",
                node.id,
                silent,
                lease_ttl,
            )
            body.update(engine="stalled", leader=False)
            return JSONResponse(
                {"status": "unavailable", "database": "ok", "schema_version": version, **body},
                status_code=503,
            )
    return JSONResponse({"status": "ok", "database": "ok", "schema_version": version, **body})
