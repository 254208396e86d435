"""The dashboard: server-rendered pages at ``/`` of ``tickwork serve``.

``tickwork.web.router`` (built in ``tickwork.web.routes``) is included by the API's
``create_app``, which also lets ``tickwork.web.too_large_answer`` answer the dashboard's
own requests over the body limit. Pages read and change everything through
``tickwork.api.access``, so the dashboard sees and may do exactly what the same caller
may through the REST API.
Front-end files (htmx, its SSE extension, uPlot, and Swagger UI for the API's ``/docs``)
are vendored in ``static/``: no Node is needed to install, run or test it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from tickwork.web.oversize import too_large_answer

    router: APIRouter

__all__ = ["router", "too_large_answer"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so the pure helpers (timefmt, forms) load without the API.
    if name == "router":
        from tickwork.web.routes import router

        return router
    if name == "too_large_answer":  # the answer to a form over the body limit
        from tickwork.web.oversize import too_large_answer

        return too_large_answer
    raise AttributeError(name)
