"""What the API knows of the engine that serves with it.

``tickwork serve`` runs its engine in a process of its own and sets
``app.state.engine_process`` to its supervisor (``EngineProcess``); an app built around
a ``Scheduler`` that runs its engine in-process (``engine=True``) reports that one.
``/health`` says whether the engine runs and its node beats; ``tickwork_leader`` whether
its node leads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI

from tickwork.engine.scheduler import Scheduler
from tickwork.models import Node
from tickwork.store.base import Store


class EngineProcess(Protocol):
    """The engine process of ``serve``, as its supervisor sees it."""

    @property
    def alive(self) -> bool: ...

    @property
    def node_id(self) -> str | None: ...

    #: Times the engine process was started, the first included.
    starts: int

    @property
    def store_call_oldest(self) -> float: ...


@dataclass(frozen=True)
class EngineState:
    """Whether this server has an engine, whether it runs, and its node."""

    present: bool
    alive: bool
    node: str | None
    #: Times a dead engine process was replaced by a new one (``serve``'s engine only).
    restarts: int = 0
    #: Seconds the engine's oldest store call has waited for the database, once past
    #: the warning threshold (``engine.store_watch``); 0.0 when none has.
    store_call_oldest: float = 0.0


def engine_state(app: FastAPI, scheduler: Scheduler) -> EngineState:
    """The engine of this server: in-process, in ``serve``'s child process, or none (an
    API over a database that nodes elsewhere serve)."""
    engine = scheduler.engine
    if engine is not None:
        since = engine.store_watch.slow_since
        oldest = 0.0 if since is None else max(0.0, time.time() - since)
        return EngineState(True, True, scheduler.node_id, store_call_oldest=oldest)
    process: EngineProcess | None = getattr(app.state, "engine_process", None)
    if process is None:
        return EngineState(False, False, None)
    return EngineState(
        True,
        process.alive,
        process.node_id,
        max(0, process.starts - 1),
        process.store_call_oldest,
    )


def engine_node(store: Store, state: EngineState) -> Node | None:
    """The node of this server's engine as the database lists it; None while the engine
    is down or its node is not listed yet (a read of the database; call it off the event
    loop)."""
    if state.node is None or not state.alive:
        return None
    return next((n for n in store.list_nodes() if n.id == state.node), None)
