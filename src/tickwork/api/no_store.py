"""Every ``/api/v1`` answer says: keep no copy, and take the type as given.

API answers carry what a token may read (runs' results and data, the list of tokens,
the audit log): ``Cache-Control: no-store`` keeps browsers and proxies from storing
them, ``X-Content-Type-Options: nosniff`` keeps a browser from reading a JSON body as
anything else. The dashboard sends the same two with its own (``web/render.py``).

One middleware adds them to every answer under ``/api/v1``, those the quick reads,
the routes, the error handlers and the limits give alike; a header an answer sets
itself (the event stream's ``Cache-Control: no-cache``) is left as it is.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The headers, as the dashboard and the API send them.
PRIVATE_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_RAW: Final = tuple((k.lower().encode(), v.encode()) for k, v in PRIVATE_HEADERS.items())
_NAMES: Final = frozenset(name for name, _ in _RAW)
_PREFIX: Final = "/api/v1"


class NoStore:
    """Add ``PRIVATE_HEADERS`` to each HTTP answer under ``/api/v1`` that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (
            path.startswith(_PREFIX) and (len(path) == len(_PREFIX) or path[len(_PREFIX)] == "/")
        ):
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                for name, _ in headers:  # few; Starlette's names are lower-case
                    if name in _NAMES:  # one the answer set itself is kept as it is
                        present = {n.lower() for n, _ in headers}
                        missing = [pair for pair in _RAW if pair[0] not in present]
                        message = {**message, "headers": [*headers, *missing]}
                        break
                else:
                    message = {**message, "headers": [*headers, *_RAW]}
            await send(message)

        await self.app(scope, receive, send_private)
