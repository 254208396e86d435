"""The facade's schedule calls: read, list, change, delete, pause and resume schedules,
and their next fire times (``add_schedule`` is ``Scheduler``'s own)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tickwork.engine.facade import (
    SchedulerBase,
    check_version,
    filter_arg,
    id_arg,
    parsed_schedule,
)
from tickwork.errors import (
    NotFoundError,
    PreconditionFailedError,
    ScheduleError,
    ValidationError,
)
from tickwork.models import SCHEDULE_STATUSES, Schedule, ScheduleStatus
from tickwork.policy import next_fire
from tickwork.schedule import ParsedSchedule
from tickwork.schedule.once import is_relative
from tickwork.store.base_reads import Revised
from tickwork.store.records import ALL_SCHEDULES, ScheduleFilter
from tickwork.validation import build_schedule, differing_changes, integer, parse_instant

#: Reads and writes an unconditional update makes when other changes keep committing
#: between its read and its write (each failure is another writer's success).
_UPDATE_ATTEMPTS: Final = 20
#: The most records one list call returns (``limit``).
MAX_LIST: Final = 2**31 - 1
#: Fields whose change moves the next fire time.
_TIMING_FIELDS: Final = frozenset(
    {"schedule", "timezone", "start_at", "end_at", "max_executions", "paused"}
)
#: Timing fields that only end the fire times sooner or later, leaving them as they are.
_END_FIELDS: Final = frozenset({"end_at", "max_executions"})


class ScheduleCalls(SchedulerBase):
    """Reading and changing schedules."""

    async def list_schedules(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[Schedule]:
        """Schedules matching every filter given, ordered by id (``after_id`` pages);
        ``q`` is a case-insensitive search in id, name, description and task; ``limit``
        None: all of them."""
        if status is not None and status not in SCHEDULE_STATUSES:
            raise ValidationError(
                f"status {status!r} is not one of {', '.join(SCHEDULE_STATUSES)}",
                field="status",
            )
        if limit is not None:
            integer(limit, "limit", minimum=1, maximum=MAX_LIST)
        return await self._call(
            self.store.list_schedules,
            status=status,
            task=filter_arg(task, "task"),
            tag=filter_arg(tag, "tag"),
            owner=filter_arg(owner, "owner"),
            q=filter_arg(q, "q"),
            after_id=filter_arg(after_id, "after_id"),
            limit=limit,
        )

    async def schedule_revisions(
        self,
        held: Mapping[str, int],
        filters: ScheduleFilter = ALL_SCHEDULES,
        *,
        schedule_id: str | None = None,
    ) -> list[Revised]:
        """``list_schedules`` for ``filters`` (or the one ``schedule_id``) for a caller
        that keeps decoded schedules: ``(id, revision, record)``, the record None where
        ``held`` has the stored revision (``Store.schedule_revisions``). On this thread
        when the store's reads never wait (SQLite), awaited on this loop when the store
        reads over the network without a thread (PostgreSQL): the hop to a store thread
        and back costs more than the read."""
        store = self.store
        if store.reads_inline:
            return store.schedule_revisions(held, filters, schedule_id=schedule_id)
        if store.reads_async():
            return await store.schedule_revisions_async(held, filters, schedule_id=schedule_id)
        return await self._call(store.schedule_revisions, held, filters, schedule_id=schedule_id)

    async def upcoming_schedules(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Schedule]:
        """Active schedules in order of their next fire time (then id), ``limit`` at a
        time after ``after`` = (next_fire_at, id): an index read, however many there are."""
        return await self._call(self.store.upcoming_schedules, limit, after)

    async def update_schedule(
        self, /, schedule_id: str, *, expected_version: int | None = None, **changes: Any
    ) -> Schedule:
        """Change settable fields; timing fields recompute the next fire from now. A field
        given its present value is no change: an update that changes nothing writes
        nothing (the same version, no audit entry, an interval not restarted).

        ``expected_version``: the ``version`` the caller read; if the schedule changed
        since, ``PreconditionFailedError`` and nothing changes. Without it, a change
        committed by someone else between this call's read and its write does not fail
        the call: the changes are applied again over the new version. An invalid change
        raises naming its first bad field; the error's ``problems`` name them all."""
        check_version(expected_version)
        for attempt in range(1, _UPDATE_ATTEMPTS + 1):
            try:
                return await self._update_once(schedule_id, expected_version, changes)
            except PreconditionFailedError:
                if expected_version is not None or attempt == _UPDATE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _update_once(
        self, schedule_id: str, expected_version: int | None, changes: Mapping[str, Any]
    ) -> Schedule:
        """One read and one write of ``update_schedule``; the write is refused when the
        stored version is no longer the one read."""
        current = await self.get_schedule(schedule_id)
        if expected_version is not None and current.version != expected_version:
            raise PreconditionFailedError(
                f"schedule {schedule_id!r} is at version {current.version}, not "
                f"{expected_version}: it changed since it was read"
            )
        now = self.clock.now()
        changes = differing_changes(current, changes, now)
        if not changes:  # its settings as they are: nothing to write, nor to audit
            return current
        expression = changes.get("schedule")
        new_expression = "schedule" in changes and expression != current.schedule
        base = current
        if new_expression and isinstance(expression, str) and "start_at" not in changes:
            # "now" and "in 1h" count from the change, as they would from an add.
            base = current.replace(anchor=now) if is_relative(expression) else current
        try:
            record = self._show_node_defaults(build_schedule(base, changes, now))
            if "task" in changes or "data" in changes:
                (await self.task_spec(record.task)).check_data(record.data)
        except (ValidationError, ScheduleError) as exc:
            await self._refuse(exc, changes, current)
            raise
        if _TIMING_FIELDS & set(changes) or (
            "paused" in changes and record.paused != current.paused
        ):
            if "start_at" in changes:
                # build_schedule anchored a start_at (see validation.start_anchor)
                record = record.replace(anchor=record.anchor if record.start_at else now)
            if record.paused and not current.paused:
                record = record.replace(paused_at=now)
            # A new one-time instant is timed as an add times it: one within the misfire
            # grace still fires, one further back is refused rather than never fired.
            once = new_expression and parsed_schedule(record).kind == "once"
            record = self._with_timing(record, now, first=once)
            record = _still_due(current, record)
        record = record.replace(updated_at=now)
        audit = self._audit("schedule.updated", f"schedule:{schedule_id}", current.to_dict())
        stored = await self._call(self.store.update_schedule, record, audit, current.version)
        self._changed()
        if set(changes) - {"paused"}:  # a change besides the pause (the stream's rule)
            self._emit("schedule.updated", stored.id, changed=sorted(changes))
        if stored.paused != current.paused:
            # A pause or resume made by an update is one as pause() makes it (the event
            # stream of serve says so too): a subscriber waiting for it hears it.
            self._emit("schedule.paused" if stored.paused else "schedule.resumed", stored.id)
        return stored

    async def delete_schedule(
        self, schedule_id: str, *, expected_version: int | None = None
    ) -> None:
        """Delete the schedule; waiting runs are cancelled, running ones are stopped as
        ``cancel_run`` stops them, history is kept.
        ``expected_version`` as for ``update_schedule``."""
        id_arg(schedule_id, "schedule_id")
        check_version(expected_version)
        audit = self._audit("schedule.deleted", f"schedule:{schedule_id}")
        deleted = await self._call(
            self.store.delete_schedule, schedule_id, self.clock.now(), audit, expected_version
        )
        if deleted is None:
            raise NotFoundError("schedule", schedule_id)
        self._changed()
        for run in deleted:  # its waiting runs, ended here as cancel_run ends one
            self._emit_run_cancelled(run)
        self._emit("schedule.deleted", schedule_id)

    async def pause(
        self, id: str | None = None, *, expected_version: int | None = None
    ) -> list[Schedule]:
        """Pause one schedule, or all (``id=None``). Runs already waiting or running go on.
        ``expected_version`` (one schedule) as for ``update_schedule``."""
        return await self._set_paused(id, True, expected_version)

    async def resume(
        self, id: str | None = None, *, expected_version: int | None = None
    ) -> list[Schedule]:
        """Resume one schedule, or all; fire times passed while paused are not caught up.
        ``expected_version`` (one schedule) as for ``update_schedule``."""
        return await self._set_paused(id, False, expected_version)

    async def _set_paused(
        self, schedule_id: str | None, paused: bool, expected_version: int | None
    ) -> list[Schedule]:
        check_version(expected_version)
        if schedule_id is None and expected_version is not None:
            raise ValidationError(
                "expected_version is the version of one schedule: give its id",
                field="expected_version",
            )
        if schedule_id is not None:
            await self.get_schedule(schedule_id)
        action = "schedule.paused" if paused else "schedule.resumed"
        changed = await self._call(
            self.store.set_paused,
            None if schedule_id is None else [schedule_id],
            paused,
            self.clock.now(),
            _next_fire,
            self._audit(action, "schedule:*"),
            expected_version,
        )
        self._changed()
        for s in changed:
            self._emit("schedule.paused" if paused else "schedule.resumed", s.id)
        return changed

    async def next_fire_times(
        self, schedule_id: str, count: int = 5, *, after: datetime | str | None = None
    ) -> list[datetime]:
        """The schedule's next ``count`` fire times (empty when paused or finished); with
        ``after`` (naive = in the schedule's zone), its fire times strictly after it."""
        integer(count, "count", minimum=1, maximum=1000)
        s = await self.get_schedule(schedule_id)
        if s.status != "active" or s.next_fire_at is None:
            return []
        parsed = parsed_schedule(s)
        begin = parse_instant(after, "after", s.timezone)
        executions = s.execution_count + 1
        if begin is not None:
            if s.max_executions is not None and begin > s.next_fire_at:
                # The fires up to ``begin`` use executions too: count them (as far as
                # there are executions left, and at most _COUNTED_FIRES).
                executions = _fires_until(parsed, s, begin, executions)
                if executions > s.max_executions:
                    return []
            first = next_fire(parsed, s, begin)
            if first is None:
                return []
            times = [first]
        else:
            times = [s.next_fire_at.astimezone(parsed.tz)]
        while len(times) < count:
            if s.max_executions is not None and executions >= s.max_executions:
                break
            nxt = next_fire(parsed, s, times[-1])
            if nxt is None:
                break
            times.append(nxt)
            executions += 1
        return times


#: How many fire times ``next_fire_times`` steps through to reach its ``after``.
_COUNTED_FIRES: Final = 100_000


def _fires_until(parsed: ParsedSchedule, s: Schedule, begin: datetime, ordinal: int) -> int:
    """The ordinal (1 = the schedule's first execution) of the first fire after
    ``begin``, given ``ordinal``, that of the fire at ``s.next_fire_at`` (before
    ``begin``). Stops counting once past ``max_executions`` or after _COUNTED_FIRES."""
    assert s.next_fire_at is not None and s.max_executions is not None
    t = s.next_fire_at
    for _ in range(_COUNTED_FIRES):
        if ordinal > s.max_executions:
            break
        nxt = next_fire(parsed, s, t)
        if nxt is None or nxt > begin:
            break
        t = nxt
        ordinal += 1
    return ordinal + 1


def _still_due(current: Schedule, changed: Schedule) -> Schedule:
    """``changed`` with the fire ``current`` had due kept, when the change only moved
    the schedule's end (``end_at``, ``max_executions``): the timing computed from now
    skipped fires already due (a schedule no node has fired while they were down),
    which were then neither run nor recorded ``missed``; kept, the catch-up policy
    decides them when a node fires it."""
    moved = {f for f in _TIMING_FIELDS if getattr(changed, f) != getattr(current, f)}
    due = current.next_fire_at
    if not moved or not moved <= _END_FIELDS or due is None or changed.paused:
        return changed
    kept = _next_fire(changed, due - timedelta(microseconds=1))
    if kept is None or (changed.next_fire_at is not None and kept >= changed.next_fire_at):
        return changed
    return changed.replace(next_fire_at=kept.astimezone(UTC), status="active")


def _next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    return next_fire(parsed_schedule(schedule), schedule, after)
