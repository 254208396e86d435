"""The HTTP process's heap settled once the app is built (api/heap.py)."""

from __future__ import annotations

import gc

from tickwork.api import heap


def test_settle_takes_the_objects_alive_out_of_collections_until_released() -> None:
    kept = [[k] for k in range(1000)]  # lists: walked by every collection
    made_after: list[list[int]] = []
    try:
        frozen = heap.settle()
        assert frozen >= len(kept) and gc.get_freeze_count() == frozen
        made_after.append([1])
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in walked for o in kept)  # a full collection skips them
        assert id(made_after[0]) in walked  # what is made later is collected as before
    finally:
        heap.release()
    assert gc.get_freeze_count() == 0
    walked = {id(o) for o in gc.get_objects()}
    assert all(id(o) in walked for o in kept)
