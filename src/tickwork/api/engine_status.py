"""What the API knows of the engine that serves with it.

``tickwork serve`` runs its engine in a process of its own and sets
``app.state.engine_process`` to its supervisor (``EngineProcess``); an app built around
a ``Scheduler`` that runs its engine in-process (``engine=True``) reports that one.
``/health`` says whether the engine runs; ``tickwork_leader`` whether its node leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI

from tickwork.engine.scheduler import Scheduler
from tickwork.store.base import Store


class EngineProcess(Protocol):
    """The engine process of ``serve``, as its supervisor sees it."""

    @property
    def alive(self) -> bool: ...

    @property
    def node_id(self) -> str | None: ...

    #: Times the engine process was started, the first included.
    starts: int


@dataclass(frozen=True)
class EngineState:
    """Whether this server has an engine, whether it runs, and its node."""

    present: bool
    alive: bool
    node: str | None
    #: Times a dead engine process was replaced by a new one (``serve``'s engine only).
    restarts: int = 0


def engine_state(app: FastAPI, scheduler: Scheduler) -> EngineState:
    """The engine of this server: in-process, in ``serve``'s child process, or none (an
    API over a database that nodes elsewhere serve)."""
    engine = scheduler.engine
    if engine is not None:
        return EngineState(True, True, scheduler.node_id)
    process: EngineProcess | None = getattr(app.state, "engine_process", None)
    if process is None:
        return EngineState(False, False, None)
    return EngineState(True, process.alive, process.node_id, max(0, process.starts - 1))


def leads(store: Store, node: str | None) -> bool:
    """Whether ``node`` holds the leadership (a read of the database; call it off the
    event loop)."""
    if node is None:
        return False
    return any(n.id == node and n.is_leader for n in store.list_nodes())
