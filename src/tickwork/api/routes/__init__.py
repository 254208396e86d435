"""The ``/api/v1`` routers; ``ERROR_RESPONSES`` documents the error shape on each."""

from __future__ import annotations

from typing import Any

from tickwork.api.schemas import ErrorOut

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (401, "No or bad credentials"),
        (403, "Not allowed (read-only token, admin only)"),
        (404, "Not found (or not yours)"),
        (409, "Conflict"),
        (412, "Changed since read (If-Match)"),
        (413, "Body too large"),
        (422, "Invalid input; details.field names the first field at fault, details.problems each"),
        (429, "Rate limited; see Retry-After"),
        (503, "The database cannot be reached right now"),
    )
}

#: Those an event stream can answer before it starts.
STREAM_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: ERROR_RESPONSES[status] for status in (401, 422, 429, 503)
}
