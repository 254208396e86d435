"""Response bodies serialized once, straight to JSON bytes.

A route that returns a pydantic model has FastAPI validate it again against its
``response_model`` and then serialize it: for a page of 50 schedules that was 50
records turned into dicts, validated twice and encoded, the largest part of the
request's time. Routes here return a ``Response`` with the bytes instead (FastAPI
passes it through; ``response_model`` still documents the body). Schedules go from the
stored record to JSON in one pass of pydantic's serializer over the ``Schedule``
dataclass, whose fields are those of ``ScheduleOut``; other bodies are models
serialized once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from fastapi import Response
from pydantic import BaseModel, TypeAdapter

from tickwork.models import Schedule

_SCHEDULE: Final = TypeAdapter(Schedule)
_SCHEDULES: Final = TypeAdapter(list[Schedule])
MEDIA_TYPE: Final = "application/json"


def schedule_json(schedule: Schedule) -> bytes:
    """The body of ``ScheduleOut`` for ``schedule``."""
    return _SCHEDULE.dump_json(schedule, warnings=False)


def schedule_page_json(items: Sequence[Schedule], next_cursor: str | None) -> bytes:
    """The body of ``Page[ScheduleOut]``."""
    return b"".join(
        (
            b'{"items":',
            _SCHEDULES.dump_json(list(items), warnings=False),
            b',"next_cursor":',
            json.dumps(next_cursor).encode(),
            b"}",
        )
    )


def page_json(items: Sequence[bytes], next_cursor: str | None) -> bytes:
    """The body of a ``Page`` of items serialized already (as ``schedule_page_json``
    gives it)."""
    return b"".join(
        (
            b'{"items":[',
            b",".join(items),
            b'],"next_cursor":',
            json.dumps(next_cursor).encode(),
            b"}",
        )
    )


def model_json(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model)


def json_response(
    body: bytes | BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response with ``body`` as is (a model: serialized once)."""
    content = model_json(body) if isinstance(body, BaseModel) else body
    return Response(content, status_code, dict(headers or {}), MEDIA_TYPE)
