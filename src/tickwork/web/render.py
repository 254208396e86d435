"""Rendering a dashboard page: the templates, what every page knows (who is signed in,
their display preferences, the form token), and the headers every page carries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from tickwork.api.no_store import PRIVATE_HEADERS
from tickwork.web import timefmt
from tickwork.web.session import csrf_token, preferences, session_token

#: No inline script or style anywhere; htmx and uPlot only set styles through the DOM.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    **PRIVATE_HEADERS,  # no-store and nosniff, as the API sends them
}
FLASH_COOKIE: Final = "tw_flash"


@cache
def static_files() -> dict[str, bytes]:
    """The vendored and own front-end files, read once from the package."""
    root = resources.files("tickwork.web").joinpath("static")
    return {
        entry.name: entry.read_bytes()
        for entry in root.iterdir()
        if entry.is_file() and not entry.name.endswith((".md", ".LICENSE"))
    }


@cache
def static_version(name: str) -> str:
    return hashlib.sha256(static_files()[name]).hexdigest()[:12]


def static_url(name: str) -> str:
    """A URL that changes with the file's content, so it can be cached for a year."""
    return f"/static/{name}?v={static_version(name)}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tickwork.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.filters["duration"] = timefmt.duration_text
    env.filters["tojson_attr"] = lambda v: json.dumps(v, separators=(",", ":"), default=str)
    env.filters["urlq"] = lambda v: quote(str(v), safe="")
    env.filters["pretty_json"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    return env


TEMPLATES: Final = _environment()


def render(
    request: Request,
    template: str,
    caller: Any,
    *,
    status_code: int = 200,
    live_url: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page, with the signed-in caller's preferences and form token in its context."""
    prefs = preferences(request, getattr(caller, "user", None))
    live = getattr(request.app.state, "tickwork_live", None)
    if live_url is not None and live is not None:
        # The feed position of this render: the stream starts after it, missing nothing.
        live_url += ("&" if "?" in live_url else "?") + f"after={live.feed.last_id}"
    token = session_token(request)
    now = datetime.now(UTC)
    flashes = _flashes(request)

    def t(dt: datetime | None, zone: str | None = None) -> Markup:
        return timefmt.time_tag(dt, prefs, zone)

    def clock(dt: datetime, zone: str | None = None) -> Markup:
        return timefmt.clock_tag(dt, prefs, zone)

    def rel(dt: datetime | None) -> Markup:
        return timefmt.relative_tag(dt, now)

    def query(**changes: Any) -> str:
        """This page's query string with ``changes`` applied (None removes a key)."""
        params = dict(request.query_params)
        for k, v in changes.items():
            if v is None or v == "":
                params.pop(k, None)
            else:
                params[k] = str(v)
        return "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())

    html = TEMPLATES.get_template(template).render(
        request=request,
        caller=caller,
        prefs=prefs,
        csrf=csrf_token(token) if token else "",
        flashes=flashes,
        live_url=live_url,
        now=now,
        t=t,
        clock=clock,
        rel=rel,
        query=query,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    if flashes:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def fragment(template: str, *, status_code: int = 200, **context: Any) -> Response:
    """A part of a page that htmx swaps in (a form's live check): no layout, no caller."""
    html = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _flashes(request: Request) -> list[tuple[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error, RecursionError):  # not one of ours
        return []
    if isinstance(value, list):
        return [(str(k), str(t)) for k, t in value if isinstance(t, str)][:5]
    return []


def redirect(url: str, flash: str | None = None, kind: str = "ok") -> Response:
    """303 to ``url``; ``flash`` is shown once on the page it leads to."""
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    if flash:
        set_flash(response, flash, kind)
    return response


def live_redirect(url: str, flash: str, kind: str = "ok", status_code: int = 404) -> Response:
    """The answer to a page's live refresh that finds its page gone: the whole page goes
    to ``url`` (htmx follows ``HX-Redirect``), which shows ``flash`` once."""
    response = Response(status_code=status_code, headers={**SECURITY_HEADERS, "HX-Redirect": url})
    set_flash(response, flash, kind)
    return response


def set_flash(response: Response, flash: str, kind: str = "ok") -> None:
    """``flash`` is shown once on the next page rendered."""
    response.set_cookie(
        FLASH_COOKIE,
        base64.urlsafe_b64encode(json.dumps([[kind, flash]]).encode()).decode(),
        max_age=60,
        httponly=True,
        samesite="lax",
        path="/",
    )
