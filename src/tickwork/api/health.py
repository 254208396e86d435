"""``GET /health``: 200 when the database answers, 503 when it does not.

For load balancers and orchestrators: no credentials needed, and the answer says no
more than whether this process can serve (the database's URL and errors stay in the
log).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import tickwork
from tickwork.errors import StoreError

router = APIRouter(tags=["monitoring"])
log = logging.getLogger("tickwork.api")

#: Seconds the database has to answer before the check fails.
TIMEOUT: Final = 3.0


@router.get(
    "/health",
    summary="Health: is the database reachable?",
    responses={503: {"description": "The database does not answer."}},
)
async def health(request: Request) -> JSONResponse:
    """`{"status": "ok", ...}` with 200 when the database answers within 3 seconds;
    `{"status": "unavailable", ...}` with 503 otherwise."""
    scheduler = request.app.state.scheduler
    engine = scheduler.engine
    body: dict[str, Any] = {
        "version": tickwork.__version__,
        "node": scheduler.node_id if engine is not None else None,
        "leader": bool(engine is not None and engine.is_leader),
    }
    try:
        version = await asyncio.wait_for(asyncio.to_thread(scheduler.store.schema_version), TIMEOUT)
    except (StoreError, TimeoutError) as exc:
        log.warning(
            "health check: the database does not answer: %s",
            str(exc) or f"no answer in {TIMEOUT:g} s",
        )
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", **body}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok", "schema_version": version, **body})
