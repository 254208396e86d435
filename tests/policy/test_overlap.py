"""The overlap rule a claim applies: a schedule's room and its queue's head."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork.policy import is_queue_head, queue_head, room, running_limit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overlap", "max_instances", "limit"),
    [
        ("allow", 3, 3),
        ("allow", 1, 1),
        ("skip", 3, 1),
        ("queue", 3, 1),
        ("buffer_one", 3, 1),
        ("replace", 3, None),
    ],
)
def test_running_limit(overlap: str, max_instances: int, limit: int | None) -> None:
    assert running_limit(overlap, max_instances) == limit


def test_room_is_what_the_limit_leaves() -> None:
    assert room("allow", 3, 0) == 3
    assert room("allow", 3, 2) == 1
    assert room("allow", 3, 5) == 0  # never negative (a lowered max_instances)
    assert room("skip", 1, 0) == 1
    assert room("queue", 9, 1) == 0
    assert room("replace", 1, 50) is None
    assert room(None, 1, 50) is None  # a run without a schedule


def test_only_the_oldest_unfinished_run_heads_a_queue() -> None:
    a, b, c = (T0, "b"), (T0, "c"), (T0 + timedelta(seconds=1), "a")
    assert queue_head([c, b, a]) == a
    assert queue_head([]) is None
    assert is_queue_head("queue", a, [a, b, c])
    assert not is_queue_head("queue", b, [a, b, c])  # same time: the id decides
    assert not is_queue_head("queue", c, [a, c])
    assert is_queue_head("queue", c, [c])
    assert is_queue_head("allow", c, [a, b, c])  # order only binds a queue
    assert is_queue_head(None, c, [a])
