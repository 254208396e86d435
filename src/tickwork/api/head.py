"""HEAD wherever GET is served.

FastAPI answers HEAD only on routes that list it (``/health``, ``/metrics``, the
dashboard's page for an unknown address): every other GET route answered HEAD with
405. ``HeadAsGet`` hands every HEAD to the app as the GET of the same address; the
HTTP server (uvicorn), which still sees a HEAD, sends that GET's status and headers
without its body. Where no GET is served the GET's 405 is the answer, its ``Allow``
right for HEAD too; its message names HEAD, the method asked (``asked_method``).
Event streams are left out: their GET never ends, so a HEAD answered as one would hold
the connection open for nothing (405, as before).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths whose GET is an endless event stream: HEAD stays a 405 there.
STREAM_PATHS: Final = frozenset({"/api/v1/events", "/ui/events"})
#: The scope key saying a request was a HEAD handed on as a GET.
_WAS_HEAD: Final = "tickwork.head"


def asked_method(scope: dict[str, Any] | Scope) -> str:
    """The method the client sent: HEAD for a HEAD handed on as a GET."""
    return "HEAD" if scope.get(_WAS_HEAD) else str(scope["method"])


class HeadAsGet:
    """Hand a HEAD to ``app`` as a GET (but on an event stream): the server drops the
    body, so the answer is the GET's status and headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "HEAD"
            and scope["path"] not in STREAM_PATHS
        ):
            scope = {**scope, "method": "GET", _WAS_HEAD: True}
        await self.app(scope, receive, send)
