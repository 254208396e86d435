"""Limits every request meets before a route: body size (413) and rate (429).

Both are plain ASGI middleware, so they answer before FastAPI reads anything, in the
API's JSON error shape; a part of the app with pages of its own (the dashboard) may
answer a body over the limit its own way (``TooLargeAnswer``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Final, Literal, TypeAlias

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickwork.api.errors import error_body

#: Paths a monitoring system polls: never rate limited.
UNLIMITED_PATHS: Final = frozenset({"/health", "/metrics"})
#: Seconds a credential found valid stays known as such without a request.
PROVEN_FOR: Final = 3600.0
#: The scope key of the verdicts on the request's credentials (``note_credential``).
_VERDICTS: Final = "tickwork.credential_verdicts"

#: The kinds of credential the rate limit keys a request by.
CredentialKind: TypeAlias = Literal["bearer", "session"]
#: Whether a bearer credential is valid, told without the database (the admin token, a
#: JWT): such a credential has a budget of its own from its first request.
ProvesAlone: TypeAlias = Callable[[str], bool]


def note_credential(scope: MutableMapping[str, Any], kind: CredentialKind, valid: bool) -> None:
    """Tell the rate limit what checking the request's credential of ``kind`` found: a
    valid one gets a budget of its own, apart from its address's (``RateLimit``). Only
    the code that checks a credential says so; an answer other than 401 does not (a
    page open to all answers a made-up one with 200)."""
    verdicts = scope.get(_VERDICTS)
    if isinstance(verdicts, dict):
        verdicts[kind] = valid


_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: Another answer than the JSON error to a request whose body is over the limit, for a
#: part of the app with pages of its own: given the request's scope, the limit, and the
#: body's size when its ``Content-Length`` said it, the ASGI app that answers (it is
#: given no body), or None to leave the request to the JSON error.
TooLargeAnswer: TypeAlias = Callable[[Scope, int, int | None], ASGIApp | None]


async def _send_error(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class BodyLimit:
    """Refuse request bodies over ``max_body`` bytes with 413: at once when
    ``Content-Length`` says so, else as soon as the streamed body passes the limit.

    The refusal is the API's JSON error, unless one of ``answers`` takes the request
    (the dashboard answers its own forms with a page)."""

    def __init__(self, app: ASGIApp, max_body: int, answers: Sequence[TooLargeAnswer] = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.answers = tuple(answers)

    async def _refuse(self, scope: Scope, send: Send, size: int | None) -> None:
        for answer in self.answers:
            other = answer(scope, self.max_body, size)
            if other is not None:
                await other(scope, _no_body, send)
                return
        message = f"the request body is larger than {self.max_body} bytes"
        await _send_error(send, 413, "payload_too_large", message, [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length: int | None = int(value)
                except ValueError:
                    length = None
                if length is not None and length > self.max_body:
                    await self._refuse(scope, send, length)
                    return
        # Read the body here (bounded), then hand it on: a route never sees more.
        chunks: list[bytes] = []
        size = 0
        more = scope["method"] in _WITH_BODY
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, send, None)
                return
            chunks.append(chunk)
            more = bool(msg.get("more_body"))
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay if chunks else receive, send)


class RateLimit:
    """At most ``per_minute`` requests a minute per credential (the bearer token, by a
    hash of it; a client without one by its address), as a token bucket: a burst of
    ``per_minute`` at once, then one every ``60 / per_minute`` seconds. Over it: 429
    with ``Retry-After``. Buckets are in memory, per process.

    A credential has a budget of its own once it is known to be valid: the code that
    checks credentials found it so (``note_credential``), or, for one the server checks
    without the database (``proves_alone``: ``TICKWORK_ADMIN_TOKEN``, a JWT), this
    layer did before counting it. Until then its requests also count against the
    client's address, so a client cannot escape the limit by sending a different
    made-up credential with each request; a valid credential keeps its own budget
    whoever shares its address, and stays known for ``PROVEN_FOR`` seconds after its
    last request (until a check finds it invalid: revoked, expired)."""

    def __init__(
        self,
        app: ASGIApp,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        proves_alone: ProvesAlone | None = None,
    ) -> None:
        self.app = app
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.proves_alone = proves_alone
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        #: Keys of credentials found valid -> when last.
        self._valid: dict[str, float] = {}
        self._swept = clock()

    def _keys(self, scope: Scope) -> tuple[str, str | None, CredentialKind | None, bytes]:
        """(the request's bucket: its credential's, else its address's; its address's
        when it carries a credential; the credential's kind; its header's value). The
        ``Authorization`` header comes first: the API reads it before any cookie."""
        client = scope.get("client")
        address = f"a:{client[0] if client else '?'}"
        cookie: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                return "t:" + hashlib.sha256(value).hexdigest(), address, "bearer", value
            if name == b"cookie" and b"tickwork_session" in value and cookie is None:
                cookie = value
        if cookie is not None:
            return "c:" + hashlib.sha256(cookie).hexdigest(), address, "session", cookie
        return address, None, None, b""

    def _proven_alone(self, header: bytes) -> bool:
        """Whether a bearer header's credential is valid by ``proves_alone``."""
        if self.proves_alone is None:
            return False
        parts = header.decode("latin-1").split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return False
        return self.proves_alone(parts[1].strip())

    def take(self, key: str) -> float:
        """0 when the request may go; else seconds until it could."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            self._sweep(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        """Forget full buckets now and then, so one-off clients do not pile up."""
        if now - self._swept < 60 or len(self._buckets) < 1000:
            return
        self._swept = now
        refill = self.capacity / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}
        self._valid = {k: at for k, at in self._valid.items() if now - at < PROVEN_FOR}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.capacity <= 0 or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        key, address, kind, header = self._keys(scope)
        unproven = address is not None and key not in self._valid
        if unproven and kind == "bearer" and self._proven_alone(header):
            self._valid[key] = self.clock()
            unproven = False
        wait = self.take(address) if unproven and address is not None else 0.0
        if wait == 0:
            wait = self.take(key)
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            await _send_error(
                send,
                429,
                "rate_limited",
                f"more than {int(self.capacity)} requests a minute; retry in {retry} s",
                [(b"retry-after", retry.encode())],
            )
            return
        if address is None or kind is None:
            await self.app(scope, receive, send)
            return
        verdicts: dict[str, bool] = {}
        scope[_VERDICTS] = verdicts

        async def noting_validity(message: Message) -> None:
            if message["type"] == "http.response.start":
                valid = verdicts.get(kind)
                if valid is True:
                    self._valid[key] = self.clock()
                elif valid is False:
                    self._valid.pop(key, None)
            await send(message)

        await self.app(scope, receive, noting_validity)
