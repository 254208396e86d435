"""The FastAPI application of ``tickwork serve``: routers, error shape, limits, CORS.

``create_app(scheduler, settings)`` serves the ``/api/v1`` routes over a started
``Scheduler`` (the caller owns its life: ``tickwork serve`` starts it before serving
and stops it after). Routers other parts provide (live events, ``/health``,
``/metrics``, the dashboard at ``/`` and the API's documentation at ``/docs``) are
included when their module is installed: each module exposes ``router``, and may
expose ``too_large_answer`` (a ``protection.TooLargeAnswer``) to answer its own
requests over the body limit.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

import tickwork
from tickwork.api.auth import proven_alone
from tickwork.api.bodies import ScheduleBodies
from tickwork.api.errors import install_error_handlers
from tickwork.api.head import HeadAsGet
from tickwork.api.no_store import NoStore
from tickwork.api.protection import BodyLimit, RateLimit, TooLargeAnswer
from tickwork.api.quick_reads import QuickReads
from tickwork.api.routes import runs, schedules, system
from tickwork.api.settings import ApiSettings
from tickwork.engine.scheduler import Scheduler

API_PREFIX: Final = "/api/v1"
#: The name of the credential every ``/api/v1`` operation needs, in the OpenAPI schema.
BEARER_SCHEME: Final = "bearer"

#: Modules with a ``router`` included when present: (module, prefix).
_OPTIONAL_ROUTERS: Final = (
    ("tickwork.api.events", API_PREFIX),
    ("tickwork.api.health", ""),
    ("tickwork.api.metrics", ""),
    ("tickwork.web", ""),
)


def create_app(scheduler: Scheduler, settings: ApiSettings | None = None) -> FastAPI:
    """The API over ``scheduler`` (started by the caller) with ``settings``."""
    settings = settings or ApiSettings()
    app = FastAPI(
        title="tickwork",
        version=tickwork.__version__,
        description="A durable job scheduler: schedules, runs and their history. "
        "Authenticate with `Authorization: Bearer <token>`.",
        openapi_url="/openapi.json",
        # /docs comes from tickwork.web (api_docs), with Swagger UI's files vendored
        # there: FastAPI's own page loads them from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.scheduler = scheduler
    app.state.settings = settings
    _declare_bearer_auth(app)
    app.state.schedule_bodies = ScheduleBodies()
    install_error_handlers(app)

    # Each router straight under the app: one level of inclusion to match through,
    # not two (each level matches a request again).
    for part in (schedules.router, runs.router, system.router):
        app.include_router(part, prefix=API_PREFIX)
    too_large: list[TooLargeAnswer] = []
    for module_name, prefix in _OPTIONAL_ROUTERS:
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            app.include_router(router, prefix=prefix)
        answer = getattr(module, "too_large_answer", None)
        if callable(answer):
            too_large.append(answer)

    # Outermost last: the body limit and the rate limit answer before anything else
    # reads the request; CORS wraps them so refusals carry its headers too.
    app.add_middleware(QuickReads, api=app)  # innermost: after every limit
    app.add_middleware(HeadAsGet)  # a HEAD is its GET, answered quickly too
    app.add_middleware(BodyLimit, max_body=settings.max_body, answers=too_large)
    app.add_middleware(
        RateLimit,
        per_minute=settings.rate_limit,
        proves_alone=lambda bearer: proven_alone(settings, bearer),
    )
    app.add_middleware(NoStore)  # on every answer under /api/v1, refusals included
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # Every request header a route reads: a browser asks before sending one.
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "Last-Event-ID",
                "traceparent",
            ],
            expose_headers=["ETag", "Location", "Retry-After"],
        )
    return app


def _declare_bearer_auth(app: FastAPI) -> None:
    """Say in the OpenAPI schema that every ``/api/v1`` operation takes a bearer token,
    so ``/docs`` offers "Authorize" and sends it with each call it tries.

    Only the schema changes: requests are authenticated by ``auth.current_caller`` as
    before, with nothing added to their path."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            BEARER_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token (`tickwork token create`), "
                "TICKWORK_ADMIN_TOKEN, or a JWT when the server takes them.",
            }
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(API_PREFIX + "/"):
                for operation in operations.values():
                    operation["security"] = [{BEARER_SCHEME: []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
