"""The dashboard's answer to a form over the server's body limit (``TICKWORK_MAX_BODY``).

The REST API answers such a request with its JSON 413 before any route reads it; a
person who pasted too much into a form gets the dashboard's page instead, status 413,
saying that nothing was saved and what the limit is: the schedule form shown again with
that at its top, any other form the error page leading back to its page, an htmx
request the fragment its target shows. The body is never read. Only requests a browser
sends the dashboard are taken: a form's post, an htmx request, or one asking for HTML,
outside the REST API and the monitoring paths.
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tickwork.api.auth import Caller
from tickwork.web.forms import form_values
from tickwork.web.render import fragment, render

#: Paths of the app that are not the dashboard's, besides everything under ``/api/``.
NOT_DASHBOARD: Final = frozenset(
    {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)
_FORM_TYPES: Final = frozenset({b"application/x-www-form-urlencoded", b"multipart/form-data"})
_EDIT: Final = re.compile(r"^/schedules/([^/]+)/edit$")


def size_text(n: int) -> str:
    """``1 MiB (1,048,576 bytes)``: a size a person reads, and the exact one."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{f'{n / factor:.1f}'.removesuffix('.0')} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def too_large_message(limit: int, size: int | None) -> str:
    sent = f"is {size_text(size)}" if size is not None else "is larger than that"
    return (
        f"Not saved: this server accepts at most {size_text(limit)} in one form, and the"
        f" form sent {sent}. Shorten the longest field (the data, most likely) and send"
        " it again."
    )


def is_dashboard_request(scope: Scope) -> bool:
    """A request a browser sends the dashboard: outside the REST API and monitoring, a
    form's post, an htmx request, or one asking for a page."""
    path = scope.get("path", "")
    if path.startswith("/api/") or path in NOT_DASHBOARD:
        return False
    headers = dict(scope.get("headers", ()))
    media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return (
        media in _FORM_TYPES
        or headers.get(b"hx-request") == b"true"
        or b"text/html" in headers.get(b"accept", b"")
    )


def too_large_answer(scope: Scope, limit: int, size: int | None) -> ASGIApp | None:
    """The dashboard's answer to a request of its own over ``limit``; None for others,
    which keep the API's JSON 413 (a ``tickwork.api.protection.TooLargeAnswer``)."""
    if not is_dashboard_request(scope):
        return None

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        response = await _page(Request(scope, receive), limit, size)
        await response(scope, receive, send)

    return answer


async def _page(request: Request, limit: int, size: int | None) -> Response:
    # Imported here: the sign-in module imports the routes' parts, which need the app's.
    from tickwork.web import signin

    message = too_large_message(limit, size)
    if request.headers.get("hx-request") == "true":
        return fragment("_refused.html", status_code=413, message=message)
    # Signed out (or the sign-in form itself): the error page all the same, as sending
    # the form again after signing in would be refused again.
    caller = await signin.current_caller(request)
    if caller is not None and request.method == "POST":
        again = await _form_again(request, caller, message)
        if again is not None:
            return again
    return render(
        request,
        "error.html",
        caller,
        status_code=413,
        title="Form too large",
        message=message,
        back=signin.page_of_form(request),
        back_label="Back to the page",
    )


async def _form_again(request: Request, caller: Caller, message: str) -> Response | None:
    """The schedule form (new, or the edit of a schedule the caller sees) with
    ``message`` at its top; None for any other address."""
    from tickwork.web import actions, data, signin

    path = request.url.path
    if path == "/schedules/new":
        values, editing = form_values(None), None
    elif edit := _EDIT.match(path):
        s = await data.schedule_or_none(signin.scheduler_of(request), caller, edit[1])
        if s is None:
            return None
        values, editing = form_values(s), s.id
    else:
        return None
    return await actions.form_page(
        request, caller, values=values, errors={"_": message}, editing=editing, status_code=413
    )
