"""The two reads clients repeat most, ``GET /api/v1/schedules/{id}`` and
``GET /api/v1/schedules``, answered without FastAPI's routing and dependency solving.

Matching a request against every route and solving its dependencies (path parameter,
caller, request) cost more than the rest of such a request together. This ASGI layer
sits inside the rate limit, body limit and CORS, recognizes the two reads by their
path, and answers them with the very functions their routes call (``schedule_one``,
``schedule_page``: same caller, scoping, body, ETag, cursor). It answers only what it
is sure of: a 200. Anything else, be it a missing or foreign schedule, a bad
credential, a query parameter it does not parse exactly as FastAPI would (or one the
route does not take, which the route refuses), or any error, passes the request on
untouched to the FastAPI app, whose route then gives the answer and error shape it
always gave.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from tickwork.api import paging
from tickwork.api.auth import Caller, authenticate
from tickwork.api.protection import note_credential
from tickwork.api.routes.schedules import schedule_one, schedule_page

_LIST_PATH: Final = "/api/v1/schedules"
_ONE_PREFIX: Final = _LIST_PATH + "/"
_STATUSES: Final = frozenset({"active", "paused", "finished"})
_STRINGS: Final = frozenset({"task", "tag", "owner", "q", "cursor"})
_FILTERS: Final = frozenset({"task", "tag", "owner"})
#: What FastAPI reads as the int ``limit`` without doubt (no sign, no spaces).
_LIMIT: Final = re.compile(r"[0-9]{1,4}")


def list_query(query: bytes) -> dict[str, Any] | None:
    """The parameters of ``GET /schedules`` from a query string, or None when any of
    it is not plainly valid (the route then parses it and says what is wrong)."""
    found: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None
    for name, value in pairs:
        if name in found:
            return None  # repeated: left to FastAPI's rules
        if "\x00" in value:
            return None  # the route refuses a NUL, naming the parameter
        if name == "limit":
            if not _LIMIT.fullmatch(value) or not 1 <= int(value) <= paging.MAX_LIMIT:
                return None
            found[name] = int(value)
        elif name == "status":
            if value not in _STATUSES:
                return None
            found[name] = value
        elif name in _STRINGS:
            if not value and name in _FILTERS:
                return None  # blank: the route refuses it (``paging.Filter``)
            found[name] = value
        else:
            return None  # unknown: the route refuses it (``known_query``)
    return found


def _bearer(scope: Scope) -> str | None:
    """The bearer credential as ``auth.bearer_of`` reads it (one header, scheme
    ``Bearer`` in any case)."""
    found: str | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if found is not None:
                return None  # more than one: left to the route
            found = value.decode("latin-1")
    if not found:
        return None
    scheme, _, credential = found.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


class QuickReads:
    """Answer the schedule reads directly when sure of a 200; pass the rest on."""

    def __init__(self, app: ASGIApp, api: Any) -> None:
        self.app = app
        #: The FastAPI app: its ``state`` holds the scheduler, settings and bodies.
        self.api = api
        #: Reads answered here, and passed on.
        self.answered = 0
        self.passed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == _LIST_PATH:
            query = list_query(scope.get("query_string", b""))
            one = None
        elif path.startswith(_ONE_PREFIX) and "/" not in path[len(_ONE_PREFIX) :]:
            query, one = None, path[len(_ONE_PREFIX) :]
            if not one or scope.get("query_string") or "\x00" in one:
                one = None  # a query parameter it takes none of, a NUL: the route refuses it
        else:
            await self.app(scope, receive, send)
            return
        if one is None and query is None:
            await self._pass(scope, receive, send)
            return
        caller = await self._caller(scope)
        if caller is None:
            await self._pass(scope, receive, send)
            return
        try:
            if one is not None:
                response = await schedule_one(self.api, caller, one)
            else:
                response = await schedule_page(self.api, caller, **(query or {}))
        except Exception:  # the route answers it again, in the API's error shape
            await self._pass(scope, receive, send)
            return
        self.answered += 1
        await response(scope, receive, send)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.passed += 1
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> Caller | None:
        bearer = _bearer(scope)
        if bearer is None:
            return None
        state = self.api.state
        caller = await authenticate(state.scheduler, state.settings, bearer)
        note_credential(scope, "bearer", caller is not None)
        return caller
