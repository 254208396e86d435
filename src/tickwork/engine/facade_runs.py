"""The facade's run calls: trigger a run now (once per idempotency key), wait for it,
read, list and cancel runs, and backfill a schedule's past fire times."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from tickwork.engine.facade import (
    SchedulerBase,
    check_version,
    filter_arg,
    id_arg,
    parsed_schedule,
    run_statuses_arg,
    still_at_version,
)
from tickwork.engine.ids import new_id
from tickwork.errors import ConflictError, NotFoundError, RunTimeoutError, ValidationError
from tickwork.models import JSON, AuditEntry, Run, RunStatus, Schedule
from tickwork.validation import integer, json_object, parse_instant, seconds

MAX_BACKFILL: Final = 10_000
#: How long an Idempotency-Key of ``run_now`` returns the run it made.
IDEMPOTENCY_WINDOW: Final = timedelta(hours=24)


class RunCalls(SchedulerBase):
    """Triggering, reading, cancelling and backfilling runs."""

    async def run_now(
        self,
        schedule_id: str,
        data: dict[str, JSON] | None = None,
        wait: bool = False,
        timeout: float | timedelta | None = None,
        traceparent: str | None = None,
        *,
        idempotency_key: str | None = None,
        expected_version: int | None = None,
    ) -> Run:
        """Trigger a run now, outside the schedule; ``data`` is merged over the schedule's.

        With ``wait`` returns the finished run (whichever node ran it); ``timeout``
        bounds the wait (``RunTimeoutError``). ``traceparent`` (a W3C trace context):
        the run joins that trace, its attempts' spans under the caller's span (the trace
        id is stored as ``run.trace_id``, the span id as ``run.parent_span_id``, its
        flags as ``run.trace_flags``: a caller's span not sampled leaves the attempts
        unsampled under a parent-based sampler). Without it, the OpenTelemetry span
        current here (if any) is the caller's span. With
        ``idempotency_key``, the same key from the same actor within 24 hours returns
        the run made the first time instead of making another. With
        ``expected_version`` (the ``version`` the caller read), a schedule changed since
        is a ``PreconditionFailedError`` and no run is made: the run is made from the
        very version read (its ``schedule_version``).
        """
        # Imported here: opentelemetry (when installed) costs every client's start.
        from tickwork.engine.tracing import current_traceparent, trace_context_of

        if traceparent is None:
            # Called inside a span (instrumented code, a request to an instrumented
            # server, a task's attempt): the run belongs to that trace, as a message a
            # traced producer sends does.
            traceparent = current_traceparent()
        trace_id, parent_span_id, trace_flags = trace_context_of(traceparent) or (None, None, None)
        if not isinstance(wait, bool):
            raise ValidationError("wait must be True or False", field="wait")
        timeout = _wait_timeout(timeout)
        check_version(expected_version)
        s = await self.get_schedule(schedule_id)
        still_at_version(s, expected_version)
        if data is not None and not isinstance(data, dict):
            raise ValidationError("data must be a JSON object", field="data")
        merged = dict(s.data) | dict(data or {})
        if data:
            merged = json_object(merged, "data")
            (await self.task_spec(s.task)).check_data(merged)
        now = self.clock.now()
        run = Run(
            id=new_id(),
            schedule_id=s.id,
            task=s.task,
            scheduled_for=now,
            trigger="manual",
            data=merged,
            due_at=now,
            priority=s.priority,
            timeout=s.timeout,
            retry=s.retry,
            node_defaults=s.node_defaults,
            created_at=now,
            trace_id=trace_id,
            parent_span_id=parent_span_id,
            trace_flags=trace_flags,
            schedule_version=s.version,
        )
        audit = self._audit("schedule.run", f"schedule:{s.id}", after={"data": merged})
        if idempotency_key is not None:
            created = await self._run_once(s, run, idempotency_key, audit)
        else:
            inserted = await self._call(self.store.insert_runs, [run], audit)
            created = inserted[0] if inserted else run
        self._changed()
        if wait:
            return await self.wait_for_run(created.id, timeout=timeout)
        return created

    async def _run_once(self, s: Schedule, run: Run, key: str, audit: AuditEntry) -> Run:
        if not isinstance(key, str) or not key or len(key) > 255:
            raise ValidationError(
                "an idempotency key is 1 to 255 characters", field="idempotency_key"
            )
        scope = audit.actor
        window_start = self.clock.now() - IDEMPOTENCY_WINDOW
        for attempt in range(3):
            try:
                found = await self._call(
                    self.store.insert_run_once, s, run, (scope, key), window_start, audit
                )
                return found[0]
            except ConflictError:
                # Two requests with one key at once (PostgreSQL): the loser's insert
                # failed on the key and the next try finds the winner's run. A key used
                # for another schedule fails again, and the last try raises it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def wait_for_run(self, run_id: str, timeout: float | timedelta | None = None) -> Run:
        """Return the run once it is over (succeeded, failed, ...); ``timeout`` (seconds
        or a ``timedelta``) bounds the wait (``RunTimeoutError``)."""
        timeout = _wait_timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.01
        while True:
            run = await self.get_run(run_id)
            if run.done:
                return run
            if deadline is not None and loop.time() >= deadline:
                raise RunTimeoutError(f"run {run_id} is still {run.status} after {timeout:g} s")
            pause = delay if deadline is None else min(delay, max(deadline - loop.time(), 0))
            await asyncio.sleep(pause)
            delay = min(delay * 1.5, 0.25)

    async def get_run(self, run_id: str, *, owner: str | None = None) -> Run:
        """The run; ``owner``: only if it is that user's (``list_runs`` says whose)."""
        found = await self._call(self.store.get_run, id_arg(run_id, "run_id"), owner)
        if found is None:
            raise NotFoundError("run", run_id)
        return found

    async def list_runs(
        self,
        schedule_id: str | None = None,
        status: RunStatus | Collection[RunStatus] | None = None,
        limit: int = 100,
        *,
        task: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        before_id: str | None = None,
        owner: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Runs, newest ``scheduled_for`` first; ``owner``: of that user's schedules,
        deleted ones included (``Store.list_runs``);
        ``before`` (scheduled_for, id) pages (see ``Store.list_runs``). ``since`` and
        ``until`` (datetimes or ISO-8601 strings, naive = UTC): runs with
        ``since <= scheduled_for < until``."""
        integer(limit, "limit", minimum=1, maximum=10_000)
        return await self._call(
            self.store.list_runs,
            schedule_id=filter_arg(schedule_id, "schedule_id"),
            task=filter_arg(task, "task"),
            status=run_statuses_arg(status),
            since=parse_instant(since, "since"),
            until=parse_instant(until, "until"),
            before_id=before_id,
            limit=limit,
            owner=owner,
            before=before,
        )

    async def cancel_run(self, run_id: str) -> Run:
        """Cancel a waiting run at once, or ask the node running it to stop it."""
        id_arg(run_id, "run_id")
        audit = self._audit("run.cancelled", f"run:{run_id}")
        run = await self._call(self.store.cancel_run, run_id, self.clock.now(), audit)
        if run.status == "cancelled":
            self._emit_run_cancelled(run)
        engine = self.engine
        if engine is not None:
            if self._engine_loop is not None:
                self._engine_loop.loop.call_soon_threadsafe(engine.request_cancel, run_id)
            else:
                engine.request_cancel(run_id)
        self._changed()
        return run

    async def backfill(
        self,
        schedule_id: str,
        start: datetime | str,
        end: datetime | str,
        *,
        expected_version: int | None = None,
    ) -> list[Run]:
        """Create a run (trigger ``backfill``) for every past fire time in [start, end]
        that has none yet; the unique key makes a repeated backfill add nothing. Fire
        times still to come are left to the schedule. A range with no past fire time is
        a ``ValidationError``. ``expected_version`` as for ``run_now``."""
        check_version(expected_version)
        s = await self.get_schedule(schedule_id)
        still_at_version(s, expected_version)
        begin = parse_instant(start, "start", s.timezone)
        finish = parse_instant(end, "end", s.timezone)
        if begin is None or finish is None:
            raise ValidationError("backfill needs a start and an end", field="start")
        if finish < begin:
            raise ValidationError("end is before start", field="end")
        parsed = parsed_schedule(s)
        if parsed.kind == "manual":
            # No range could do: the schedule's kind rules it out (409, not a 422 with
            # a field to fix).
            raise ConflictError(
                f"schedule {s.id!r} is manual: it has no fire times to backfill"
                " (run it now instead)"
            )
        now = self.clock.now()
        # Past fire times only: a run for one still to come would run it early and take
        # the schedule's own fire (one run per scheduled time). None after ``end_at``:
        # the schedule has no fire time there.
        last = min(finish, now) if s.end_at is None else min(finish, now, s.end_at)
        times: list[datetime] = []
        t = parsed.next_after(begin - timedelta(microseconds=1))
        while t is not None and t <= last:
            times.append(t)
            if len(times) > MAX_BACKFILL:
                raise ValidationError(
                    f"backfill would create more than {MAX_BACKFILL} runs; use a shorter range",
                    field="end",
                )
            t = parsed.next_after(t)
        if not times:  # a range the schedule never fires in: surely not what was meant
            zone = ZoneInfo(s.timezone)  # the zone naive times were read in

            def local(instant: datetime) -> str:
                return instant.astimezone(zone).isoformat()

            if t is not None and s.end_at is not None and t > s.end_at:
                raise ValidationError(
                    f"no fire time of schedule {s.id!r} falls between {local(begin)} and "
                    f"{local(finish)}: its end_at is {local(s.end_at)}",
                    field="start",
                )
            if t is not None and t <= finish:
                raise ValidationError(
                    f"backfill runs past fire times only: the first fire time of schedule "
                    f"{s.id!r} in the range, {local(t)}, is still to come (run_now runs "
                    "the task at once)",
                    field="start",
                )

            after = f"; its first after the start is {local(t)}" if t is not None else ""
            raise ValidationError(
                f"no fire time of schedule {s.id!r} falls between {local(begin)} and "
                f"{local(finish)}{after}",
                field="start",
            )
        runs = [
            Run(
                id=new_id(),
                schedule_id=s.id,
                task=s.task,
                scheduled_for=t,
                trigger="backfill",
                data=dict(s.data),
                due_at=now,
                priority=s.priority,
                timeout=s.timeout,
                retry=s.retry,
                node_defaults=s.node_defaults,
                created_at=now,
                schedule_version=s.version,
            )
            for t in times
        ]
        audit = self._audit(
            "schedule.backfilled",
            f"schedule:{s.id}",
            after={"start": begin.isoformat(), "end": finish.isoformat()},
        )
        inserted = await self._call(self.store.insert_runs, runs, audit)
        self._changed()
        return inserted


def _wait_timeout(timeout: object) -> float | None:
    """The seconds a caller waits for a run at most (None: as long as it takes)."""
    return None if timeout is None else seconds(timeout, "timeout")
