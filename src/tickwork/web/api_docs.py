"""The REST API's interactive documentation at ``/docs`` (Swagger UI), served entirely
from this server.

FastAPI's own ``/docs`` loads Swagger UI's script and stylesheet from a CDN, which
leaves the page blank on a machine without internet access, the usual place for a
scheduler inside a private network. Here they are the pinned copies vendored in
``static/`` (see its README), at content-hashed URLs cached for a year. Like FastAPI's,
the page is public: it holds no data, and every call made from it needs a token.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from tickwork.web.address import DashboardRoute
from tickwork.web.render import SECURITY_HEADERS, static_url

router = APIRouter(route_class=DashboardRoute)
DOCS_PATH: Final = "/docs"
OAUTH2_REDIRECT_PATH: Final = "/docs/oauth2-redirect"


@router.get(DOCS_PATH, include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return with_policy(
        get_swagger_ui_html(
            openapi_url=root + (request.app.openapi_url or "/openapi.json"),
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=root + static_url("swagger-ui-bundle.js"),
            swagger_css_url=root + static_url("swagger-ui.css"),
            swagger_favicon_url="data:,",  # no icon to fetch, as on the dashboard's pages
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            # No badge from validator.swagger.io: nothing on the page leaves this server.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
async def oauth2_redirect() -> HTMLResponse:
    return with_policy(get_swagger_ui_oauth2_redirect_html())


_INLINE_SCRIPT: Final = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with the dashboard's security headers, its Content-Security-Policy
    allowing, besides this server's files, only the page's own inline scripts (by
    their hashes: FastAPI's page starts Swagger UI from one). So the page, which takes
    a token in "Authorize", cannot be framed by another site nor run a script that
    was not written here."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page.body)
    )
    headers = dict(SECURITY_HEADERS)
    headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
        "script-src 'self'", f"script-src 'self' {hashes}".rstrip()
    )
    headers["Cache-Control"] = "no-cache"
    page.headers.update(headers)
    return page
