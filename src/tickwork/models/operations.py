"""Records of tickwork at work: its nodes, the audit log, API tokens, queue messages,
the event feed and per-task figures."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tickwork.models.records import json_dict
from tickwork.models.values import DEFAULT_LEASE_TTL, JSON


@dataclass(frozen=True, slots=True)
class Node:
    """A tickwork process that executes runs."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    tasks: tuple[str, ...] = ()
    is_leader: bool = False
    running: int = 0
    stopped_at: datetime | None = None
    #: Threads still running a sync task the node gave up on (timed out, cancelled), as
    #: of its last heartbeat: each was replaced, but holds what its task holds.
    stuck_threads: int = 0
    #: Async tasks the node gave up on (they ignored their cancellation for
    #: ``stop_grace``) still running on its event loop, as of its last heartbeat.
    stuck_coroutines: int = 0
    #: The lease (seconds) the node renews: silent longer than this, it is not alive.
    #: None for a node registered by a tickwork that did not record it.
    lease_ttl: float | None = None

    def lease(self, fallback: float = DEFAULT_LEASE_TTL) -> float:
        """The node's own ``lease_ttl``, or ``fallback`` when it was not recorded."""
        return fallback if self.lease_ttl is None else self.lease_ttl

    def silent_for(self, now: datetime) -> float:
        """Seconds since the node last renewed its heartbeat."""
        return (now - self.heartbeat_at).total_seconds()

    def alive_at(self, now: datetime, fallback: float = DEFAULT_LEASE_TTL) -> bool:
        """Not stopped, and its heartbeat renewed within its own lease (a node's lease
        is its own setting: a peer's or a reader's says nothing about it)."""
        return self.stopped_at is None and self.silent_for(now) <= self.lease(fallback)

    def to_dict(self) -> dict[str, Any]:
        return json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change, as the audit log keeps it: who did what to which record, the record
    before and after (JSON), and why when the actor said so."""

    actor: str
    action: str
    target: str
    at: datetime
    before: JSON = None
    after: JSON = None
    reason: str | None = None
    #: Set by the store (increasing).
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as stored: never its secret, only the secret's hash."""

    id: str
    user: str
    created_at: datetime
    admin: bool = False
    read_only: bool = False
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def role(self) -> str:
        return "admin" if self.admin else ("read-only" if self.read_only else "user")

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        d = json_dict(dataclasses.asdict(self))
        d["role"] = self.role
        return d


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """A dashboard sign-in as stored: never its secret, only the secret's hash.

    ``via`` is the credential it was made with: ``"token"`` (an API token,
    ``token_id``), ``"admin"`` (``TICKWORK_ADMIN_TOKEN``) or ``"jwt"``; for the last
    two ``credential_hash`` is ``tokens.bound_hash`` of the server's admin token or JWT
    keys then, under the session's secret. ``token_revoked_at`` is when that API token was
    revoked, if it was (read with the session, so a revocation ends it at once)."""

    id: str
    user: str
    via: Literal["token", "admin", "jwt"]
    created_at: datetime
    expires_at: datetime
    admin: bool = False
    read_only: bool = False
    token_id: str | None = None
    credential_hash: str | None = None
    token_revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        """Not expired at ``now``, and its API token (if any) not revoked."""
        return now < self.expires_at and self.token_revoked_at is None


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A result or error put on a named queue when a run finished."""

    id: int
    queue: str
    run_id: str
    schedule_id: str | None
    kind: Literal["result", "error"]
    payload: JSON
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return json_dict(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One entry of the database's event feed: a change to a schedule or a run, as
    committed by any process. ``id`` increases in commit order. ``owner`` is the
    schedule's owner when the event was written (who may see it). The run's details
    (task, times, node, error) are read from its row with the event, so they are its
    latest values."""

    id: int
    type: str
    at: datetime
    schedule_id: str | None
    run_id: str | None = None
    status: str | None = None
    attempt: int | None = None
    owner: str | None = None
    task: str | None = None
    trigger: str | None = None
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    node: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event's JSON object: ids, status, and the details known for it."""
        out: dict[str, Any] = {"id": self.id, "type": self.type, "at": self.at.isoformat()}
        out["schedule_id"] = self.schedule_id
        if self.run_id is not None:
            out["run_id"] = self.run_id
        out["status"] = self.status
        if self.run_id is not None:
            out["attempt"] = self.attempt
        out["owner"] = self.owner
        if self.task is not None:
            out["task"] = self.task
        if self.run_id is not None:
            out["trigger"] = self.trigger
            for name in ("scheduled_for", "started_at", "finished_at"):
                value = getattr(self, name)
                out[name] = None if value is None else value.isoformat()
            out["node"] = self.node
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class TaskStats:
    """Per-task figures over a period, for ``tickwork stats``."""

    task: str
    #: Runs counted: every status but ``skipped`` and ``missed`` (never executed).
    runs: int
    #: Each of these counts runs in exactly that status, the words ``history --status``
    #: filters on: ``failed`` is not ``timed_out`` nor ``lost``.
    succeeded: int
    failed: int
    p50_duration: float | None
    p95_duration: float | None
    timed_out: int = 0
    lost: int = 0
    cancelled: int = 0

    @property
    def success_rate(self) -> float | None:
        """Succeeded among the runs that ended after executing (succeeded, failed,
        timed_out, lost); cancelled and unfinished runs do not count."""
        ended = self.succeeded + self.failed + self.timed_out + self.lost
        return None if ended == 0 else self.succeeded / ended

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["success_rate"] = self.success_rate
        return d
