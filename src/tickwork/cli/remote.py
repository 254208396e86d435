"""The CLI's backend for a tickwork server (``--url``/``--token``): the REST API over httpx.

``RemoteScheduler`` answers the calls the commands make of a ``Scheduler`` with the
same records (``Schedule``, ``Run``, ``Node``...), rebuilt from the API's JSON, and
raises the same errors (``NotFoundError``, ``UnknownTaskError``...) from the API's
error bodies; the commands format them with the same code, so their output is the
same as on the database. What only the database can do (``db upgrade``, ``cleanup``,
``worker``) is refused with a message that says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx

import tickwork
from tickwork.api import paging
from tickwork.engine.audit import current_actor
from tickwork.errors import (
    ConflictError,
    FieldProblem,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RunTimeoutError,
    ScheduleError,
    StoreUnavailableError,
    TickworkError,
    UnknownTaskError,
    ValidationError,
    add_problems,
)
from tickwork.models import (
    ApiToken,
    Attempt,
    AuditEntry,
    LogRecord,
    Node,
    QueueMessage,
    RetryPolicy,
    Run,
    Schedule,
    TaskSpec,
    TaskStats,
)
from tickwork.store.url import mask_password

R = TypeVar("R")

#: Items asked per page when the command wants them all (the API's maximum).
PAGE: Final = 500
#: Seconds a request may take.
TIMEOUT: Final = 30.0


class RemoteError(TickworkError):
    """The server refused or could not be reached; the message says why."""


class _UnknownTask(UnknownTaskError):
    """``UnknownTaskError`` as the server reported it."""

    def __init__(self, message: str, known: list[str]) -> None:
        ValidationError.__init__(self, message, field="task")
        self.name = ""
        self.known = sorted(known)


def _problems(details: dict[str, Any]) -> list[FieldProblem]:
    """The fields at fault an error's ``details.problems`` names (none from a server
    that did not list them)."""
    found = details.get("problems")
    if not isinstance(found, list):
        return []
    return [
        FieldProblem(p.get("field") if isinstance(p.get("field"), str) else None, str(p["message"]))
        for p in found
        if isinstance(p, dict) and "message" in p
    ]


def error_of(response: httpx.Response) -> TickworkError:
    """The tickwork error an error response stands for."""
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
        details = error.get("details") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return RemoteError(f"the server answered {response.status_code} {response.reason_phrase}")
    if not isinstance(details, dict):
        details = {}
    if code == "unknown_task":
        unknown = _UnknownTask(message, [str(k) for k in details.get("known", [])])
        add_problems(unknown, _problems(details))
        return unknown
    if code == "not_found" and "kind" in details and "id" in details:
        return NotFoundError(str(details["kind"]), str(details["id"]))
    if code == "invalid_schedule":
        field = details.get("field")
        return ScheduleError(
            message,
            field=field if isinstance(field, str) else "schedule",
            problems=_problems(details),
        )
    if code == "validation_error":
        field = details.get("field")
        return ValidationError(
            message, field=field if isinstance(field, str) else None, problems=_problems(details)
        )
    if code == "conflict":
        return ConflictError(message)
    if code == "precondition_failed":
        return PreconditionFailedError(message)
    if code == "forbidden":
        return PermissionDeniedError(message)
    if code == "unavailable":
        return StoreUnavailableError(message)
    if code == "timeout":
        return RunTimeoutError(message)
    if response.status_code == 401:  # the server's words are for HTTP clients
        return RemoteError(f"{message} (give the CLI a token: --token T or TICKWORK_TOKEN)")
    if response.status_code == 429:
        wait = response.headers.get("Retry-After")
        return RemoteError(message + (f" (retry after {wait} s)" if wait else ""))
    return RemoteError(message or f"the server answered {response.status_code}")


# -- records from JSON -------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(__import__(cls.__module__, fromlist=["_"])))


def _value(kind: Any, value: Any) -> Any:
    """``value`` (decoded JSON) as the field type ``kind`` says."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            if option is type(None):
                continue
            return _value(option, value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is RetryPolicy:
        return RetryPolicy(**{k: v for k, v in value.items() if k in _FIELDS[RetryPolicy]})
    if origin is tuple:
        (item, *_rest) = typing.get_args(kind)
        return tuple(_value(item, v) for v in value)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return record(kind, value)
    return value


_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls))
    for cls in (
        RetryPolicy,
        Schedule,
        Run,
        Attempt,
        LogRecord,
        Node,
        QueueMessage,
        TaskStats,
        ApiToken,
        AuditEntry,
    )
}
_HINTS: dict[type, dict[str, Any]] = {}


def record(cls: type[R], data: Mapping[str, Any]) -> R:
    """A record of ``cls`` from its JSON form (``to_dict``'s); fields the JSON lacks
    keep their defaults, keys the record lacks (``duration``...) are ignored."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = _hints(cls)
    names = _FIELDS.get(cls) or frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    values = {k: _value(hints[k], v) for k, v in data.items() if k in names}
    return cls(**values)


# -- the client ----------------------------------------------------------------------------


class RemoteScheduler:
    """What the CLI's commands call, answered by a tickwork server."""

    def __init__(self, url: str, token: str | None, *, timeout: float = TIMEOUT) -> None:
        base = url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise RemoteError(
                f"--url must be an http:// or https:// URL, not {mask_password(url)!r}"
            )
        #: The URL to show: a password in it (a proxy's) as ``***``.
        self.url = mask_password(base)
        headers = {"User-Agent": f"tickwork-cli/{tickwork.__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout)

    async def __aenter__(self) -> RemoteScheduler:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(method, "/api/v1" + path, params=query, json=body)
        except httpx.TimeoutException:
            raise RemoteError(f"the tickwork server at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the tickwork server at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise error_of(response)
        if response.is_redirect:  # no API route redirects: a path that names none
            raise RemoteError(f"no such resource: {method} /api/v1{path}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def _all(
        self,
        path: str,
        params: Mapping[str, Any],
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[Any]:
        """Every item of a paged list (at most ``limit``), from ``cursor`` on."""
        items: list[Any] = []
        while True:
            want = PAGE if limit is None else min(PAGE, limit - len(items))
            page = await self._request(
                "GET", path, params={**params, "limit": want, "cursor": cursor}
            )
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(items) >= limit):
                return items if limit is None else items[:limit]

    # -- schedules -----------------------------------------------------------------------

    async def add_schedule(self, task: str, schedule: str, **fields: Any) -> Schedule:
        body = {"task": task, "schedule": schedule}
        body.update({k: v for k, v in fields.items() if v is not None})
        return record(Schedule, await self._request("POST", "/schedules", body=body))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return record(Schedule, await self._request("GET", _schedule_path(schedule_id)))

    async def list_schedules(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Schedule]:
        items = await self._all(
            "/schedules",
            {"status": status, "task": task, "tag": tag, "owner": owner},
            limit,
            # The list's cursor is the last id served: the page after ``after_id``.
            None if after_id is None else paging.encode("s", after_id),
        )
        return [record(Schedule, item) for item in items]

    async def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        data = await self._request("PATCH", _schedule_path(schedule_id), body=changes)
        return record(Schedule, data)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._request("DELETE", _schedule_path(schedule_id))

    async def pause(self, id: str | None = None) -> list[Schedule]:
        return await self._pause_or_resume("pause", id)

    async def resume(self, id: str | None = None) -> list[Schedule]:
        return await self._pause_or_resume("resume", id)

    async def _pause_or_resume(self, verb: str, schedule_id: str | None) -> list[Schedule]:
        _actor, reason = current_actor()  # the CLI's --reason, recorded by the server
        body = {} if reason is None else {"reason": reason}
        if schedule_id is None:
            answer = await self._request("POST", f"/{verb}", body=body)
            ids = answer.get("ids", []) if isinstance(answer, dict) else []
            return [await self.get_schedule(i) for i in ids]
        before = await self.get_schedule(schedule_id)
        after = record(
            Schedule,
            await self._request("POST", f"{_schedule_path(schedule_id)}/{verb}", body=body),
        )
        return [after] if after.paused != before.paused else []

    async def next_fire_times(
        self, schedule_id: str, count: int = 5, *, after: datetime | str | None = None
    ) -> list[datetime]:
        data = await self._request(
            "GET",
            f"{_schedule_path(schedule_id)}/next",
            params={"count": count, "after": _iso(after)},
        )
        return [datetime.fromisoformat(t) for t in data["next"]]

    async def backfill(self, schedule_id: str, start: Any, end: Any) -> list[Run]:
        body = {"start": _iso(start), "end": _iso(end)}
        data = await self._request("POST", f"{_schedule_path(schedule_id)}/backfill", body=body)
        return [record(Run, r) for r in data["runs"]]

    # -- runs ----------------------------------------------------------------------------

    async def run_now(
        self,
        schedule_id: str,
        data: dict[str, Any] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Run:
        body = {} if data is None else {"data": data}
        run = record(
            Run, await self._request("POST", f"{_schedule_path(schedule_id)}/run", body=body)
        )
        return await self.wait_for_run(run.id, timeout) if wait else run

    async def wait_for_run(self, run_id: str, timeout: float | None = None) -> Run:
        """Polls the run until it is over: 50 ms at first, up to a second apart."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.05
        while True:
            run = await self.get_run(run_id)
            if run.done:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimeoutError(f"run {run_id} did not finish within {timeout:g} s")
            await asyncio.sleep(pause)
            pause = min(1.0, pause * 1.5)

    async def get_run(self, run_id: str) -> Run:
        return record(Run, await self._request("GET", _run_path(run_id)))

    async def list_runs(
        self,
        schedule_id: str | None = None,
        status: Any = None,
        limit: int = 100,
        *,
        task: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Run]:
        if isinstance(status, list | tuple | set | frozenset):
            status = ",".join(sorted(status))
        params = {
            "schedule": schedule_id,
            "task": task,
            "status": status,
            "since": _iso(since),
            "until": _iso(until),
        }
        return [record(Run, item) for item in await self._all("/runs", params, limit)]

    async def cancel_run(self, run_id: str) -> Run:
        return record(Run, await self._request("POST", f"{_run_path(run_id)}/cancel", body={}))

    async def read_queue(
        self, name: str, *, consume: bool = True, limit: int = 100
    ) -> list[QueueMessage]:
        # A page at a time: --limit goes beyond the API's largest page.
        params = {"consume": "true" if consume else "false"}
        items = await self._all(f"/queues/{_q(name)}/messages", params, limit)
        return [record(QueueMessage, m) for m in items]

    # -- the rest ------------------------------------------------------------------------

    async def stats(self, since: datetime | None = None) -> dict[str, Any]:
        if since is not None:
            raise RemoteError("stats --since works on the database itself: use --db URL")
        data = await self._request("GET", "/stats")
        # The API's figures, in the shape (and key order) Scheduler.stats gives them.
        tasks = [record(TaskStats, t).to_dict() for t in data["tasks"]]
        return {"tasks": tasks, "runs": data["runs"], "schedules": data["schedules"]}

    async def active_runs(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Runs per status with the backlog (the server's figures), and the running
        runs' ids by node: what ``tickwork status`` shows."""
        data = await self._request("GET", "/stats")
        by_node: dict[str, list[str]] = {}
        for run in await self.list_runs(status="running", limit=10_000):
            by_node.setdefault(run.node or "", []).append(run.id)
        # The figures Scheduler.active_runs gives; /stats counts every status.
        runs = data["runs"]
        return {k: int(runs.get(k, 0)) for k in _ACTIVE_COUNTS}, by_node

    async def schedule_counts(self, *, owner: str | None = None) -> dict[str, int]:
        """Schedules per status (those with any), from the server's figures."""
        data = await self._request("GET", "/stats")
        return {k: int(v) for k, v in data["schedules"].items() if v}

    async def upcoming_schedules(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Schedule]:
        """Active schedules in order of their next fire (then id), ``limit`` after
        ``after``: the server lists them by id, so they are sorted here."""
        active = [
            s for s in await self.list_schedules(status="active") if s.next_fire_at is not None
        ]
        keyed = sorted((((s.next_fire_at, s.id), s) for s in active), key=lambda ks: ks[0])
        return [s for key, s in keyed if after is None or key > after][:limit]

    async def overdue_fires(self, grace: float = 60.0) -> tuple[int, float]:
        """What ``Scheduler.overdue_fires`` says, over the active schedules the token
        sees (the server has no count of its own: they are listed)."""
        now = datetime.now(UTC)
        late = [
            s.next_fire_at
            for s in await self.list_schedules(status="active")
            if s.next_fire_at is not None and (now - s.next_fire_at).total_seconds() >= grace
        ]
        return len(late), max(0.0, (now - min(late)).total_seconds()) if late else 0.0

    async def nodes(self, include_stopped: bool = False) -> list[Node]:
        return [record(Node, n) for n in await self._all("/nodes", {})]

    async def known_tasks(self) -> list[str]:
        return sorted(spec.name for spec in await self.tasks())

    async def tasks(self) -> list[TaskSpec]:
        return [TaskSpec.from_dict(t) for t in await self._all("/tasks", {})]

    async def task_spec(self, name: str) -> TaskSpec:
        for spec in await self.tasks():
            if spec.name == name:
                return spec
        raise NotFoundError("task", name)

    # -- tokens and the audit log (admins) -----------------------------------------------

    async def create_token(
        self,
        user: str,
        *,
        admin: bool = False,
        read_only: bool = False,
        expires_in: timedelta | None = None,
        only_if_none: bool = False,
    ) -> tuple[ApiToken, str] | None:
        body: dict[str, Any] = {"user": user, "admin": admin, "read_only": read_only}
        if expires_in is not None:
            body["expires"] = f"{max(1, round(expires_in.total_seconds()))}s"
        data = await self._request("POST", "/tokens", body=body)
        return record(ApiToken, data), str(data["token"])

    async def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        if include_revoked:  # the API lists only tokens in force
            raise RemoteError(_DATABASE_ONLY.format(what="token list --revoked"))
        data = await self._request("GET", "/tokens")
        return [record(ApiToken, t) for t in data["items"]]

    async def revoke_token(self, token_id: str) -> ApiToken:
        return record(ApiToken, await self._request("DELETE", f"/tokens/{_id('token', token_id)}"))

    async def audit_log(
        self,
        *,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        params = {"actor": actor, "target": target, "since": _iso(since)}
        return [record(AuditEntry, e) for e in await self._all("/audit", params, limit)]

    async def cleanup(self, older_than_days: float | None = None) -> int:
        raise RemoteError(_DATABASE_ONLY.format(what="cleanup"))

    async def upgrade(self) -> list[int]:
        raise RemoteError(_DATABASE_ONLY.format(what="db upgrade"))


#: The run counts ``tickwork status`` shows, in ``Scheduler.active_runs``'s order.
_ACTIVE_COUNTS: Final = ("pending", "running", "retrying", "backlog")

_DATABASE_ONLY: Final = (
    "{what} works on the database itself, not through a server: use --db URL (or TICKWORK_DB)"
)


def _q(segment: str) -> str:
    """A path segment, escaped (ids may hold any character)."""
    return quote(segment, safe="")


def _id(kind: str, ident: str) -> str:
    """The path segment of a record's id. One no record can have, empty or holding a
    '/' (the server would read another path), is not found at once, as the database
    answers it: sent, it would reach another route."""
    if not ident or "/" in ident:
        raise NotFoundError(kind, ident)
    return _q(ident)


def _schedule_path(schedule_id: str) -> str:
    return "/schedules/" + _id("schedule", schedule_id)


def _run_path(run_id: str) -> str:
    return "/runs/" + _id("run", run_id)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
