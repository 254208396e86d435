"""``GET /metrics``: Prometheus text, every name prefixed ``tickwork_``.

Two sources, each for what it can count right:

- Counters and histograms (runs finished, attempts retried, durations, fire delays,
  fires by outcome) come from the database's event feed, which this process follows
  anyway for ``/api/v1/events``. The feed holds every node's events, so one ``serve``
  process reports the whole cluster, ``tickwork worker`` nodes included; nothing is added to
  the engine's path. They count from the process's start, as Prometheus counters do.
  Counting from the runs table instead would go down when retention deletes old runs,
  which a counter must never do.
- Gauges (schedules per status, active runs, the ages of the oldest due run and of the
  oldest fire time not fired, live nodes) are read from the database at scrape time,
  from indexes (the schedules count reads its table), so every process reports the
  same truth and nothing drifts.
  ``tickwork_leader`` is this server's engine (``serve``'s engine process): 1 while
  its node leads and renews its heartbeat.
- ``tickwork_store_call_oldest_seconds`` is what this server's engine says of its own
  database calls (``engine.store_watch``), not read from the database: the database is
  what keeps such a call waiting.

Several ``serve`` processes report the same cluster-wide counters: aggregate them with
``max``, not ``sum``, or scrape one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from tickwork.api.engine_status import EngineState, engine_node
from tickwork.errors import StoreError
from tickwork.models import FeedEvent
from tickwork.store.base import Gauges

if TYPE_CHECKING:
    from tickwork.engine.scheduler import Scheduler

router = APIRouter(tags=["monitoring"])

#: Seconds the database has to answer a scrape's reads.
TIMEOUT: Final = 3.0
#: Run durations: from 10 ms to 8 hours.
DURATION_BUCKETS: Final = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
    7200, 14400, 28800,
)  # fmt: skip
#: Fire delays: from 1 ms to an hour.
DELAY_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip
#: Statuses a run ends in after it was started or waited (skipped and missed runs are
#: fires that never ran: ``tickwork_schedule_fires_total``).
FINISHED: Final = frozenset({"succeeded", "failed", "timed_out", "cancelled", "lost"})
#: Statuses whose run executed, for durations.
EXECUTED: Final = frozenset({"succeeded", "failed", "timed_out"})
#: Triggers that are fires of a schedule.
FIRE_TRIGGERS: Final = frozenset({"schedule", "catchup"})


class FeedMetrics:
    """Counters and histograms fed by the event feed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs_finished = Counter(
            "tickwork_runs_finished",
            "Runs that ended, by task and final status.",
            ["task", "status"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "tickwork_run_duration_seconds",
            "Seconds from a run's first start to its end (retries included), by task.",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.fire_delay = Histogram(
            "tickwork_fire_delay_seconds",
            "Seconds from a scheduled time to its run's start (jitter included).",
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "tickwork_run_retries",
            "Attempts that ended without success (failed, timed out, or lost with their"
            " node) and were followed by another attempt, by task.",
            ["task"],
            registry=registry,
        )
        self.fires = Counter(
            "tickwork_schedule_fires",
            "Fire times of schedules, by what became of them: started, skipped (overlap),"
            " missed (catch-up, misfire grace) or cancelled before starting.",
            ["outcome"],
            registry=registry,
        )

    def observe(self, events: Sequence[FeedEvent]) -> None:
        for e in events:
            if e.run_id is None:
                continue
            status = e.status or ""
            task = e.task or ""
            fire = e.trigger in FIRE_TRIGGERS
            if status == "running":
                if fire and e.attempt == 1:
                    self.fires.labels("started").inc()
                    if e.started_at is not None and e.scheduled_for is not None:
                        delay = (e.started_at - e.scheduled_for).total_seconds()
                        self.fire_delay.observe(max(0.0, delay))
            elif status == "retrying":
                self.retries.labels(task).inc()
            elif status in ("skipped", "missed"):
                if fire:
                    self.fires.labels(status).inc()
            elif status in FINISHED:
                self.runs_finished.labels(task, status).inc()
                if status in EXECUTED and e.started_at is not None and e.finished_at is not None:
                    duration = (e.finished_at - e.started_at).total_seconds()
                    self.run_duration.labels(task).observe(max(0.0, duration))
                if status == "cancelled" and fire and not e.attempt:
                    self.fires.labels("cancelled").inc()


class DatabaseCollector(Collector):
    """Gauges read from the database for each scrape (``refresh``, bounded in time, then
    the registry's text)."""

    def __init__(self, scheduler: Scheduler, engine: Callable[[], EngineState]) -> None:
        self.scheduler = scheduler
        self.engine = engine
        self.gauges: Gauges | None = None
        self.leader = False
        self.state: EngineState | None = None

    async def refresh(self, timeout: float = TIMEOUT) -> None:
        """Read the gauges; None when the database does not answer within ``timeout``."""
        scheduler = self.scheduler
        now = scheduler.clock.now()
        engine = scheduler.engine
        lease_ttl = scheduler.config.lease_ttl
        since = now - timedelta(seconds=lease_ttl)
        state = self.state = self.engine()
        store = scheduler.store

        def read() -> tuple[Gauges, bool]:
            gauges = store.gauges(now, since)
            if engine is not None:
                return gauges, bool(engine.is_leader)
            node = engine_node(store, state)  # a stalled node leads no more
            return gauges, node is not None and node.is_leader and node.alive_at(now, lease_ttl)

        try:
            self.gauges, self.leader = await asyncio.wait_for(asyncio.to_thread(read), timeout)
        except (StoreError, TimeoutError):
            self.gauges, self.leader = None, False

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed at scrape time: nothing to describe ahead

    def collect(self) -> Iterator[Metric]:
        g = self.gauges
        yield GaugeMetricFamily(
            "tickwork_database_up",
            "1 when the database answered this scrape (the gauges below need it).",
            value=0.0 if g is None else 1.0,
        )
        yield GaugeMetricFamily(
            "tickwork_leader",
            "1 while this server's engine (its node) is the leader (applies retention).",
            value=1.0 if self.leader else 0.0,
        )
        engine = self.state
        if engine is not None and engine.present:
            yield CounterMetricFamily(
                "tickwork_engine_restarts",
                "Engine processes this server started to replace one that died (starts that"
                " failed included).",
                value=engine.restarts,
            )
            yield GaugeMetricFamily(
                "tickwork_store_call_oldest_seconds",
                "Seconds the oldest database call of this server's engine has waited, once"
                " it waited past the warning threshold (a sixth of lease_ttl, 1 to 5 s);"
                " 0 while every call answers sooner.",
                value=engine.store_call_oldest,
            )
        if g is None:
            return
        schedules = GaugeMetricFamily(
            "tickwork_schedules", "Schedules, by status.", labels=["status"]
        )
        for status, count in g.schedules.items():
            schedules.add_metric([status], count)
        yield schedules
        active = GaugeMetricFamily(
            "tickwork_runs_active", "Runs not over yet, by state.", labels=["state"]
        )
        for state, count in g.runs_active.items():
            active.add_metric([state], count)
        yield active
        yield GaugeMetricFamily(
            "tickwork_oldest_due_run_age_seconds",
            "How long the oldest run that is due has been waiting for a node (0: none).",
            value=g.oldest_due_age,
        )
        yield GaugeMetricFamily(
            "tickwork_oldest_due_fire_age_seconds",
            "How long the oldest fire time of an active schedule has passed without being"
            " fired (0: none): no node fires, or the firing is behind.",
            value=g.oldest_due_fire_age,
        )
        yield GaugeMetricFamily("tickwork_nodes", "Nodes alive.", value=g.nodes)
        yield GaugeMetricFamily(
            "tickwork_stuck_threads",
            "Threads of the nodes alive still running a sync task that timed out or was"
            " cancelled (replaced in the pool; each ends when its task returns).",
            value=g.stuck_threads,
        )
        yield GaugeMetricFamily(
            "tickwork_stuck_coroutines",
            "Async tasks of the nodes alive given up after they ignored their cancellation"
            " for stop_grace, still running on their event loop (each ends when its task"
            " returns).",
            value=g.stuck_coroutines,
        )


@router.api_route("/metrics", methods=["GET", "HEAD"], include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition. HEAD answers as GET does, without the body (the
    server drops it), as for ``/health``: monitors probe with either."""
    from tickwork.api.live import ensure_live

    live = await ensure_live(request.app)
    async with live.scrape_lock:  # one scrape reads the database at a time
        await live.database.refresh()
        body = generate_latest(live.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
