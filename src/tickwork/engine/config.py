"""The engine's settings: what a node may do at once, how long its leases last, and the
tuning of its fires. One frozen, validated ``EngineConfig`` per node; the constants
below are the engine's fixed tuning, named here so that every timing it depends on is
found in one file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Final

from tickwork.errors import ValidationError
from tickwork.limits import MAX_SECONDS
from tickwork.models import DEFAULT_TIMEOUT, RetryPolicy

IDLE_RECHECK: Final = 60.0  # seconds; the longest sleep without a wake-up
BLOCKED_RECHECK: Final = 1.0  # due work that cannot be claimed now is retried this often
MIN_BEAT_GAP: Final = 1.0  # seconds between early heartbeats
#: The longest (seconds) the main loop waits before trying an unavailable store again,
#: and a failed heartbeat before the next: a node notices the database's return within
#: seconds, however long it was away, for a few calls that fail fast while it is down.
STORE_RETRY_MAX: Final = 5.0
#: Seconds a node that fired waits before claiming what it left to its peers (see
#: ``Firing.leave_to_peers``).
PEER_HEAD_START: Final = 0.01
FINISH_BATCH: Final = 500  # attempt ends committed per transaction at most
#: Runs fired or claimed in one tick from which the engine counts as working off a burst.
BURST_RUNS: Final = 100
#: The longest an attempt's end waits for a burst of starts to be over (see
#: ``Finisher.deferral``).
FINISH_DEFER_MAX: Final = 1.0
#: The longest a stopping node waits for attempt ends to be written (the database may be
#: down; a run whose end is not written is taken over when its lease lapses).
SHUTDOWN_DRAIN: Final = 30.0
#: Schedules the first fire of a burst takes (see ``Firing.tick``).
FIRST_FIRE_BATCH: Final = 100
#: How long before a fire time the engine reads the schedules due then (see
#: ``FireAhead.read_ahead``), and how far past it that read reaches.
READ_AHEAD: Final = 1.0
#: A prepared fire's work, estimated before it is known: seconds per run (the engine
#: learns the real figure from its fires), and a fixed part for the transaction.
FIRE_COST_START: Final = 50e-6
FIRE_COST_FIXED: Final = 0.01
#: Fires closer together than this (seconds) are dense: each is prepared at most
#: ``DENSE_FIRE_AHEAD`` before its time plus its estimated work, so that other writers
#: find SQLite's write lock free between them (see ``FireAhead.lead``).
DENSE_FIRES: Final = 0.5
DENSE_FIRE_AHEAD: Final = 0.01
#: The longest a stopping node waits for the main loop's store call in flight.
STOP_MAIN_WAIT: Final = 10.0
#: A store call out longer than a sixth of ``lease_ttl`` (half the time between two
#: heartbeats), but at least the first and at most the second of these seconds, is said
#: in a warning (see ``engine.store_watch``). At least: a fire prepared ahead holds its
#: store call until the fire time, up to ``READ_AHEAD``, and that is no wait for the
#: database.
STORE_CALL_SLOW_MIN: Final = READ_AHEAD + 1.0
STORE_CALL_SLOW_MAX: Final = 5.0


#: The most days ``retention_days`` may be.
MAX_RETENTION_DAYS: Final = 36_525
#: ``max_concurrent``, ``max_threads`` and ``store_threads`` at most.
MAX_NODE_COUNT: Final = 100_000
_SECONDS_ABOVE_0: Final = f"more than 0 and at most {MAX_SECONDS} seconds"
_SECONDS_FROM_0: Final = f"from 0 to {MAX_SECONDS} seconds"


def _number(value: Any) -> bool:
    """A finite int or float (a bool is none): NaN passes no comparison, inf some."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: Per field: the test a value must pass, and what the error says it must be.
_RULES: Final[dict[str, tuple[Any, str]]] = {
    "max_concurrent": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "lease_ttl": (lambda v: 0 < v <= MAX_SECONDS, _SECONDS_ABOVE_0),
    "shutdown_grace": (lambda v: 0 <= v <= MAX_SECONDS, _SECONDS_FROM_0),
    "stop_grace": (lambda v: 0 < v <= MAX_SECONDS, _SECONDS_ABOVE_0),
    "retention_days": (lambda v: 0 < v <= MAX_RETENTION_DAYS, "positive, at most a century"),
    "cleanup_interval": (lambda v: 0 < v <= MAX_SECONDS, _SECONDS_ABOVE_0),
    "default_timeout": (lambda v: 0 < v <= MAX_SECONDS, _SECONDS_ABOVE_0),
    "maintenance_interval": (lambda v: 0 < v <= MAX_SECONDS, "positive or None"),
    "max_threads": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "fire_batch": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "read_ahead": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "fire_ahead": (lambda v: 0 <= v <= READ_AHEAD, f"between 0 and {READ_AHEAD:g} seconds"),
}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """A node's settings. Invalid values raise ``ValidationError`` naming the field."""

    max_concurrent: int = 100
    lease_ttl: float = 30.0
    shutdown_grace: float = 30.0
    retention_days: float = 30.0
    #: Seconds between two deletions of runs older than ``retention_days`` (by the leader).
    cleanup_interval: float = 3600.0
    #: For runs of schedules that set no timeout / retry policy (``Run.node_defaults``).
    default_timeout: float = DEFAULT_TIMEOUT
    default_retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: How often the leader runs maintenance (lost runs, retention); None: every half
    #: ``lease_ttl``, at least every half second.
    maintenance_interval: float | None = None
    #: Threads sync tasks run in (a stuck one is replaced, see ``engine.threads``).
    max_threads: int = 32
    #: Schedules fired per transaction at most; a burst of more is fired in batches,
    #: each committed while the previous one's tasks start.
    fire_batch: int = 2000
    #: Schedules decoded ahead of their fire at most (0: none): a fire then only checks
    #: that they are unchanged (``Store.read_ahead``).
    read_ahead: int = 20_000
    #: Seconds before a fire time at which its fire is prepared, its commit held until
    #: that time (0: fire at the time; see ``engine.ahead``).
    fire_ahead: float = 0.1
    #: Seconds an async task has to end once cancelled (its timeout, a cancel request,
    #: the node's shutdown, a takeover). One that ignores ``asyncio.CancelledError`` is
    #: then given up: its attempt is recorded and its slot freed, and the coroutine is
    #: left running on the event loop, where nothing can stop it.
    stop_grace: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "default_retry":
                if not isinstance(value, RetryPolicy):
                    raise ValidationError(
                        "default_retry must be a RetryPolicy", field="default_retry"
                    )
                continue
            check, must = _RULES[f.name]
            optional = value is None and f.name == "maintenance_interval"
            if not optional and not (_number(value) and check(value)):
                raise ValidationError(f"{f.name} must be {must}", field=f.name)

    @property
    def maintenance_every(self) -> float:
        """Seconds between two maintenance passes."""
        return self.maintenance_interval or max(self.lease_ttl / 2, 0.5)

    @property
    def store_call_slow(self) -> float:
        """Seconds a store call may wait for the database before a warning says so."""
        return min(max(self.lease_ttl / 6, STORE_CALL_SLOW_MIN), STORE_CALL_SLOW_MAX)


def engine_config(config: EngineConfig | None, **settings: Any) -> EngineConfig:
    """``config`` when given (then ``settings`` must be the defaults: one place says how
    a node behaves), else an ``EngineConfig`` of ``settings``."""
    if config is None:
        return EngineConfig(**settings)
    if not isinstance(config, EngineConfig):
        raise ValidationError("config must be an EngineConfig", field="config")
    defaults = EngineConfig()
    for name, value in settings.items():
        if value != getattr(defaults, name) and value != getattr(config, name):
            raise ValidationError(
                f"{name} is given both as an argument and in config; give it in config",
                field=name,
            )
    return config
