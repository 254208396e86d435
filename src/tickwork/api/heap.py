"""The HTTP process's heap, settled once the app is built: what the server keeps for
its whole life (modules, FastAPI's routes and models, pydantic's validators: some
100,000 objects) is moved out of the cyclic garbage collector's reach.

A full collection walks every tracked object. With the app's own objects among them
it took 40-70 ms on the benchmark's machine, a few times a minute under load, and
every request in flight waited for it: it was the REST API's p99. Frozen
(``gc.freeze``), those objects are left out of every later collection; what requests
make is collected as before. ``serve`` settles the heap once the app is built and
releases it when the server has stopped.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect what is garbage now, then freeze every object left; returns how many
    were frozen (the objects the collector will no longer walk)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def release() -> None:
    """Give the frozen objects back to the collector (an app stopped in a process
    that goes on: tests, an embedding program)."""
    gc.unfreeze()
