"""The class of every dashboard route: an address holding a NUL character is refused
before any page reads it, with the dashboard's own answer.

No search, filter or id holds a NUL (PostgreSQL cannot even compare text with one). A
page answers the dashboard's error page, 400, saying so; an htmx request (the form's
live checks) the fragment its target shows in place of the check. The REST API's routes
are not made with this class and keep their JSON errors.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from tickwork.web.render import fragment, render

PAGE_MESSAGE: Final = (
    "The address holds a NUL character (%00), which no page of the dashboard reads: "
    "remove it from the address."
)
FIELD_MESSAGE: Final = "A field holds a NUL character, which cannot be checked: remove it."


def has_nul(request: Request) -> bool:
    return "\x00" in request.url.path or any(
        "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()
    )


async def refuse_nul(request: Request) -> Response:
    if request.headers.get("hx-request") == "true":
        return fragment("_refused.html", status_code=400, message=FIELD_MESSAGE)
    # Imported here: the sign-in pages' own routes are made with this module's class.
    from tickwork.web.signin import current_caller

    caller = await current_caller(request)
    return render(
        request,
        "error.html",
        caller,
        status_code=400,
        title="Not a valid address",
        message=PAGE_MESSAGE,
    )


class DashboardRoute(APIRoute):
    """A dashboard route: refuses an address with a NUL character (``refuse_nul``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if has_nul(request):
                return await refuse_nul(request)
            return await handler(request)

        return checked
