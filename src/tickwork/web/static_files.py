"""The dashboard's front-end files, served from the package with year-long caching
(their URLs carry a hash of their content)."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tickwork.web.address import DashboardRoute
from tickwork.web.render import static_files, static_version

router = APIRouter(route_class=DashboardRoute)
TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@router.get("/static/{name}", include_in_schema=False)
async def static(request: Request, name: str) -> Response:
    files = static_files()
    if name not in files:
        return Response("not found\n", status_code=404, media_type="text/plain")
    versioned = request.query_params.get("v") == static_version(name)
    return Response(
        files[name],
        media_type=TYPES.get(name[name.rfind(".") :], "application/octet-stream"),
        headers={
            "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache",
            "ETag": f'"{static_version(name)}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
