"""Query parameters an endpoint does not take are refused, naming them.

FastAPI ignores a query parameter no route declares, so a typo (``?staus=failed``)
answers as if no filter had been asked for: every run, not the failed ones. Each API
router depends on ``known_query_only``, which refuses such a request with a 422 that
names the parameter and lists the ones the endpoint takes (after a 401 for a caller
without a valid credential: every API route is authenticated).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tickwork.api.auth import current_caller
from tickwork.errors import ValidationError

#: The attribute of a route that keeps the query parameters it declares, found once.
_KNOWN = "_tickwork_query_names"


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters of a route's function and of what it depends on."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known(route: APIRoute) -> frozenset[str]:
    names: frozenset[str] | None = getattr(route, _KNOWN, None)
    if names is None:
        names = frozenset(_query_names(route.dependant))
        setattr(route, _KNOWN, names)
    return names


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter the route does not declare."""
    given = request.query_params
    if not given:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _known(route)
    unknown = sorted(name for name in given if name not in known)
    if not unknown:
        return
    # Every API route is authenticated: a caller without a credential learns that first,
    # not what the endpoint takes (the caller is kept for the route).
    await current_caller(request)
    takes = f"takes {', '.join(sorted(known))}" if known else "takes no query parameter"
    listed = ", ".join(repr(name) for name in unknown)
    noun = "parameter" if len(unknown) == 1 else "parameters"
    raise ValidationError(
        f"unknown query {noun} {listed}: {request.method} {request.url.path} {takes}",
        field=unknown[0],
    )
