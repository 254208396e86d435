"""The one JSON error shape of the REST API, for tickwork's errors and FastAPI's own.

Every error answers ``{"error": {"code", "message", "details"}}``: tickwork's errors
with the status that says what went wrong (422 invalid, 404 missing or not yours, 409
conflict, 412 changed since read, 403 not allowed, 503 database unreachable),
FastAPI's request validation as 422 naming the field, and routing's 404/405 too. An
unexpected exception is a 500 with no detail (it is logged with its traceback), so a
response never carries a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickwork.api.head import asked_method
from tickwork.errors import (
    ConflictError,
    FieldProblem,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ScheduleError,
    StoreUnavailableError,
    TickworkError,
    UnknownTaskError,
    ValidationError,
)

log = logging.getLogger("tickwork.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the API answers as is (401, 413, 429...), with optional headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def unauthorized(message: str = "missing or invalid credentials") -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        message + ": send 'Authorization: Bearer <token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def problem_list(problems: Iterable[FieldProblem]) -> list[dict[str, str | None]]:
    """``details.problems``: each field at fault and why, as JSON objects."""
    return [{"field": p.field, "message": p.message} for p in problems]


def tickwork_error_response(exc: TickworkError) -> JSONResponse:
    """The response for one of tickwork's errors. A refused field's ``details`` name it
    (``field``, the first at fault, whose message is the error's) and every other one
    found wrong with the same request (``problems``, the first one included)."""
    if isinstance(exc, UnknownTaskError):
        return error_response(
            422,
            "unknown_task",
            str(exc),
            {"field": "task", "known": list(exc.known), "problems": problem_list(exc.problems)},
        )
    if isinstance(exc, ValidationError | ScheduleError):
        code = "validation_error" if isinstance(exc, ValidationError) else "invalid_schedule"
        details = {"field": exc.field, "problems": problem_list(exc.problems)}
        return error_response(422, code, str(exc), details)
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", str(exc), {"kind": exc.kind, "id": exc.ident})
    if isinstance(exc, PreconditionFailedError):
        return error_response(412, "precondition_failed", str(exc))
    if isinstance(exc, ConflictError):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, PermissionDeniedError):
        return error_response(403, "forbidden", str(exc))
    if isinstance(exc, StoreUnavailableError):
        why = f": {exc.reason}" if exc.reason else ""  # a reason names no path
        return error_response(503, "unavailable", f"the database cannot be used right now{why}")
    if isinstance(exc, TimeoutError):
        return error_response(504, "timeout", str(exc))
    log.error("store or engine error: %s", exc)
    return error_response(500, "internal_error", "the server could not do this; see its log")


#: What pydantic adds to the location of an error in a field that is a union
#: (``start_at: datetime | str``): the member tried, not a part of the request.
_UNION_MEMBERS: Final = frozenset({"datetime", "str"})


def _field_of(loc: Sequence[Any]) -> str:
    """``("body", "retry", "delay")`` -> ``retry.delay``; query and path names as is."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] in _UNION_MEMBERS:
        parts = parts[:-1]
    return ".".join(parts) or "body"


def _problem(err: Mapping[str, Any]) -> dict[str, str]:
    """One of FastAPI's validation errors as ``{"field", "message"}``."""
    loc = err.get("loc", ())
    if err.get("type") == "json_invalid":  # loc is ("body", <character position>)
        where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        reason = (err.get("ctx") or {}).get("error")
        return {
            "field": "body",
            "message": f"not valid JSON{where}" + (f": {reason}" if reason else ""),
        }
    return {"field": _field_of(loc), "message": str(err.get("msg", "invalid"))}


def _is_json(content_type: str) -> bool:
    """Whether FastAPI reads a body of this media type as JSON."""
    mime = content_type.partition(";")[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def validation_response(
    exc: RequestValidationError,
    content_type: str | None = None,
    more: Sequence[FieldProblem] = (),
) -> JSONResponse:
    """422 naming the first field at fault, and in ``problems`` every one (``more``:
    those found in the fields the body's shape let through). ``content_type``: the
    request's; a body sent as something other than JSON (``curl -d`` sends a form) is
    said to be that, not to be "not a valid dictionary"."""
    problems: list[dict[str, str | None]] = []
    for err in exc.errors():
        problem: dict[str, str | None] = dict(_problem(err))
        if (
            content_type is not None
            and not _is_json(content_type)
            and tuple(err.get("loc", ())) == ("body",)
            and err.get("type") != "missing"
        ):
            shown = content_type or "none"
            problem["message"] = (
                f"the body must be JSON sent with 'Content-Type: application/json', "
                f"not Content-Type {shown!r}"
            )
        if not any(p["field"] == problem["field"] for p in problems):  # one per field
            problems.append(problem)
    for extra in problem_list(more):
        if not any(p["field"] == extra["field"] for p in problems):
            problems.append(extra)
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    # ``errors``: the name these had before every 422 gave ``problems``.
    details = {"field": first["field"], "problems": problems, "errors": problems}
    return error_response(422, "validation_error", message, details)


#: A further check of a body whose shape FastAPI refused: the problems of the fields
#: it let through (the request, the body, the top-level fields refused).
BodyCheck = Callable[[Request, Mapping[str, Any], frozenset[str]], Awaitable[list[FieldProblem]]]
_BODY_CHECKS: dict[Any, BodyCheck] = {}

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


def check_body_with(check: BodyCheck) -> Callable[[_Endpoint], _Endpoint]:
    """Have ``check`` look at the rest of a body of this endpoint whose shape FastAPI
    refused, so one answer names every field at fault, not only the misshapen ones."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        _BODY_CHECKS[endpoint] = check
        return endpoint

    return register


async def _more_problems(request: Request, exc: RequestValidationError) -> list[FieldProblem]:
    """What the endpoint's ``BodyCheck`` finds in the fields FastAPI let through."""
    check = _BODY_CHECKS.get(request.scope.get("endpoint"))
    if check is None or not isinstance(exc.body, Mapping):
        return []
    refused: set[str] = set()
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if loc[:1] == ("body",):
            if len(loc) == 1:  # the body as a whole: nothing to look into
                return []
            refused.add(str(loc[1]))
    return await check(request, exc.body, frozenset(refused))


def _unreadable_body(exc: StarletteHTTPException) -> str:
    """Why FastAPI could not read a JSON body, from what its parser raised: its own
    message ("There was an error parsing the body") names no reason."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return "the JSON is nested too deeply to read (arrays or objects inside each other)"
    if isinstance(cause, UnicodeDecodeError):
        return f"not UTF-8 text: byte {cause.start} cannot be decoded"
    return str(exc.detail)


def install_error_handlers(app: FastAPI) -> None:
    """Every error of ``app`` in the JSON shape."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def on_tickwork(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TickworkError)
        return tickwork_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        more = await _more_problems(request, exc)
        return validation_response(exc, request.headers.get("content-type", ""), more)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 400:  # a body FastAPI cannot even decode (not UTF-8, not JSON)
            problem = _unreadable_body(exc)
            problems = [{"field": "body", "message": problem}]
            return error_response(
                422,
                "validation_error",
                f"body: {problem}",
                {"field": "body", "problems": problems, "errors": problems},
            )
        code = _HTTP_CODES.get(status, "error")
        method = asked_method(request.scope)  # a HEAD is routed as its GET
        if status == 404:
            message = f"no such resource: {method} {request.url.path}"
        elif status == 405:
            message = f"method {method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(status, code, message, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed; see its log")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(TickworkError, on_tickwork)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
