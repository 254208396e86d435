"""The words a record's fields take (statuses, policies, triggers), as types and as
tuples, and the defaults of a schedule's and a node's settings."""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

JSON = Any
"""A value that ``json.dumps`` accepts: dict, list, str, int, float, bool or None."""

OverlapPolicy = Literal["allow", "skip", "queue", "buffer_one", "replace"]
CatchupPolicy = Literal["none", "all", "latest", "spread"]
ScheduleStatus = Literal["active", "paused", "finished"]
RunTrigger = Literal["schedule", "manual", "catchup", "backfill"]
RunStatus = Literal[
    "pending",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "missed",
    "lost",
]
AttemptStatus = Literal["running", "succeeded", "failed", "timed_out", "cancelled", "lost"]
#: How a node reports an attempt ended (``lost`` is decided by recovery, never reported).
AttemptEndStatus = Literal["succeeded", "failed", "timed_out", "cancelled"]

OVERLAP_POLICIES: Final[tuple[OverlapPolicy, ...]] = get_args(OverlapPolicy)
CATCHUP_POLICIES: Final[tuple[CatchupPolicy, ...]] = get_args(CatchupPolicy)
SCHEDULE_STATUSES: Final[tuple[ScheduleStatus, ...]] = get_args(ScheduleStatus)
RUN_STATUSES: Final[tuple[RunStatus, ...]] = get_args(RunStatus)
#: A run in one of these may still execute; it counts against overlap and limits.
ACTIVE_RUN_STATUSES: Final = frozenset({"pending", "running", "retrying"})
#: A run in one of these is over for good.
FINAL_RUN_STATUSES: Final = frozenset(RUN_STATUSES) - ACTIVE_RUN_STATUSES

DEFAULT_MISFIRE_GRACE: Final = 30.0
DEFAULT_TIMEOUT: Final = 300.0
DEFAULT_LEASE_TTL: Final = 30.0
DEFAULT_MAX_CONCURRENT: Final = 100
DEFAULT_RETENTION_DAYS: Final = 30
#: Fields a schedule may leave to the node that executes its runs.
NODE_DEFAULT_FIELDS: Final = ("retry", "timeout")
