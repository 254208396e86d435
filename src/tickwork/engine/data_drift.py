"""Stored schedules whose data their task no longer accepts.

Data is checked when it is given, so a schedule's data can stop fitting only when its
task changes: a parameter renamed or retyped, or a tickwork that checks more of it (the
elements of arrays and objects). A node that publishes a task whose checks changed looks
once through that task's schedules and logs a warning for each whose data no longer
fits; the data is left as it is (its runs get it), for its owner to change. A node whose
tasks did not change reads nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from tickwork.engine.storecalls import StoreCalls
from tickwork.errors import ValidationError
from tickwork.models import TaskSpec
from tickwork.store.base import Store

log = logging.getLogger("tickwork.engine")

#: Schedules read at once.
PAGE: Final = 500
#: Schedules named in a warning per task; the others are counted in one more.
MAX_NAMED: Final = 20


def _checks(spec: TaskSpec) -> tuple[Any, ...]:
    return (spec.arguments, spec.required, spec.accepts_any, spec.types)


def changed_checks(
    published: Mapping[str, TaskSpec | None], specs: Iterable[TaskSpec]
) -> list[TaskSpec]:
    """Those of ``specs`` whose data checks differ from what was ``published`` before: a
    task published with other checks, or by a tickwork that published none (``None``).
    A task never published is not among them: nothing was checked against its past."""
    changed = []
    for spec in specs:
        if spec.name not in published:
            continue
        before = published[spec.name]
        if before is None or _checks(before) != _checks(spec):
            changed.append(spec)
    return changed


def published_specs(store: Store, names: Iterable[str]) -> dict[str, TaskSpec | None]:
    """The specs stored for those of ``names`` ever published (read before this node
    publishes its own); None for one published without its spec."""
    known = store.known_tasks()
    return {name: store.task_spec(name) for name in names if name in known}


async def warn_misfits(store: Store, db: StoreCalls, specs: Iterable[TaskSpec]) -> None:
    """Log a warning for each schedule of ``specs``' tasks whose data does not fit.
    One page of schedules per store call, so the node's other calls go on meanwhile."""
    for spec in specs:
        try:
            found = await _misfits(store, db, spec)
        except Exception as exc:  # a check that could not be made must not stop the node
            log.warning("could not check the data of task %r's schedules: %s", spec.name, exc)
            continue
        if found > MAX_NAMED:
            log.warning(
                "%d more schedule(s) of task %r have data it no longer accepts",
                found - MAX_NAMED,
                spec.name,
            )


async def _misfits(store: Store, db: StoreCalls, spec: TaskSpec) -> int:
    found = 0
    after: str | None = None
    while True:
        page = await db(store.list_schedules, task=spec.name, after_id=after, limit=PAGE)
        for schedule in page:
            try:
                spec.check_data(schedule.data)
            except ValidationError as exc:
                found += 1
                if found <= MAX_NAMED:
                    log.warning(
                        "schedule %r has data its task no longer accepts: %s; its runs "
                        "get it as it is until its data is changed",
                        schedule.id,
                        exc,
                    )
        if len(page) < PAGE:
            return found
        after = page[-1].id
        await asyncio.sleep(0)  # the loop's other work goes on between pages
