"""Query parameters an endpoint does not take are refused, naming them.

FastAPI ignores a query parameter no route declares, so a typo (``?staus=failed``)
answers as if no filter had been asked for: every run, not the failed ones. Each API
router depends on ``known_query_only``, which refuses such a request with a 422 that
names the parameter and lists the ones the endpoint takes (after a 401 for a caller
without a valid credential: every API route is authenticated). A query or path
parameter holding a NUL character is refused the same way, naming it: no database
stores one, and PostgreSQL refuses to even compare one, so without this a lookup
would answer 404 on SQLite and an error about storing on PostgreSQL. A parameter given
more than once (``?status=failed&status=lost``) is refused too: each takes one value,
and FastAPI would keep only the last, answering as if the others had not been asked.
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


def _repeated(request: Request) -> tuple[str, int] | None:
    """(name, times) of the first query parameter given more than once."""
    seen: dict[str, int] = {}
    for name, _ in request.query_params.multi_items():
        seen[name] = seen.get(name, 0) + 1
    return next(((name, n) for name, n in seen.items() if n > 1), None)


def _with_nul(request: Request) -> tuple[str, str] | None:
    """(kind, name) of the first query or path parameter holding a NUL character."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            return "query", name
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            return "path", name
    return None


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter the route does not declare, and a parameter holding a
    NUL character."""
    given = request.query_params
    if not given and not request.path_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _known(route)
    unknown = sorted(name for name in given if name not in known)
    nul = _with_nul(request)
    repeated = _repeated(request) if len(given) < len(given.multi_items()) else None
    if not unknown and nul is None and repeated is None:
        return
    # Every API route is authenticated: a caller without a credential learns that first,
    # not what the endpoint takes (the caller is kept for the route).
    await current_caller(request)
    if not unknown and nul is not None:
        kind, name = nul
        raise ValidationError(f"{kind} parameter {name!r} contains a NUL character", field=name)
    if not unknown and repeated is not None:
        name, times = repeated
        raise ValidationError(
            f"query parameter {name!r} is given {times} times: {request.method} "
            f"{request.url.path} takes one value for it",
            field=name,
        )
    takes = f"takes {', '.join(sorted(known))}" if known else "takes no query parameter"
    listed = ", ".join(repr(name) for name in unknown)
    noun = "parameter" if len(unknown) == 1 else "parameters"
    raise ValidationError(
        f"unknown query {noun} {listed}: {request.method} {request.url.path} {takes}",
        field=unknown[0],
    )
