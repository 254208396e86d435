"""The row codec: every column of a record travels to its row and back unchanged.

Each field gets a value no other field has, so a column read from the wrong position
shows; the column lists are the models' fields, so a new field is covered here.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tickwork.models import Attempt, AttemptOutcome, RetryPolicy, Run, Schedule
from tickwork.store import Store
from tickwork.store.codec import (
    ATTEMPT_COLUMNS,
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    RunAt,
    ScheduleAt,
    dumps,
)
from tickwork.store.sql import SqlStore

from .conftest import at, finish_one, make_run, make_schedule


def test_the_columns_are_the_models_fields() -> None:
    stored = {f.name for f in dataclasses.fields(Run)} - {"attempts", "logs"}
    assert set(RUN_COLUMNS) == stored
    assert tuple(f.name for f in dataclasses.fields(Schedule)) == SCHEDULE_COLUMNS
    assert ATTEMPT_COLUMNS[1:] == tuple(f.name for f in dataclasses.fields(Attempt))
    for name in ("status", "attempt", "due_at", "node", "lease_until", "error"):
        assert RUN_COLUMNS[getattr(RunAt, name)] == name
    assert SCHEDULE_COLUMNS[ScheduleAt.data] == "data"
    assert SCHEDULE_COLUMNS[ScheduleAt.retry] == "retry"


def test_a_run_and_a_schedule_survive_their_rows(store: Store) -> None:
    assert isinstance(store, SqlStore)
    run = Run(
        id="r1",
        schedule_id="s1",
        task="t",
        scheduled_for=at(1),
        trigger="backfill",
        data={"d": 1},
        status="running",
        attempt=3,
        due_at=at(2),
        started_at=at(3),
        finished_at=at(4),
        result={"r": 2},
        error="e",
        traceback="tb",
        node="n",
        trace_id="trace",
        parent_span_id="span",
        priority=7,
        lease_until=at(5),
        cancel_requested=True,
        created_at=at(6),
        timeout=8.5,
        retry=RetryPolicy(max_attempts=4, delay=2.0),
        schedule_version=9,
        node_defaults=("retry",),
    )
    assert store._run(store._run_row(run)) == run
    schedule = Schedule(
        id="s1",
        task="t",
        schedule="every 5s",
        name="n",
        description="d",
        timezone="Europe/Paris",
        data={"a": [1]},
        start_at=at(1),
        end_at=at(2),
        jitter=1.5,
        paused=True,
        overlap="queue",
        catchup="spread",
        catchup_spread=2.5,
        misfire_grace=3.5,
        max_instances=4,
        max_executions=5,
        retry=RetryPolicy(max_attempts=6),
        timeout=7.5,
        priority=8,
        result_queue="rq",
        error_queue="eq",
        tags=("x", "y"),
        metadata={"m": True},
        owner="o",
        status="paused",
        next_fire_at=at(3),
        last_fire_at=at(4),
        execution_count=9,
        created_at=at(5),
        updated_at=at(6),
        anchor=at(7),
        paused_at=at(8),
        version=10,
        node_defaults=("timeout",),
    )
    assert store._schedule(store._schedule_row(schedule)) == schedule
    assert store._schedule((*store._schedule_row(schedule), 42)) == schedule  # + revision


#: JSON numbers whose text a database might rewrite: PostgreSQL's ``jsonb`` keeps a
#: number as a decimal, and writes ``1e+20`` back as ``100000000000000000000``.
NUMBERS = [
    1e20,
    -1e20,
    1e16,
    1.5e16,
    9007199254740993.0,
    1e300,
    1.7976931348623157e308,
    123456789.125,
    1e-7,
    5e-324,
    0.1,
    1.0,
    0,
    10**20,
    2**63,
    -(2**70),
]


@pytest.mark.parametrize("number", NUMBERS, ids=repr)
def test_a_number_comes_back_as_it_went_in_on_either_database(
    store: Store, number: int | float
) -> None:
    """The same JSON value from both databases: a float stays a float (of the same
    value), an int an int, in a schedule's data and metadata, a run's data and result."""
    value = {"n": number, "list": [number], "nested": {"n": number}}
    store.add_schedule(make_schedule("s1", data=value, metadata=value))
    got = store.get_schedule("s1")
    assert got is not None
    run = make_run(got, at(1), data=value)
    store.insert_runs([run])
    (claimed,) = store.claim_runs("n1", at(2), at(60), 1, ("t",), {})
    finish_one(store, claimed.id, "n1", 1, AttemptOutcome("succeeded", result=value), at(3))
    done = store.get_run(run.id)
    assert done is not None
    for back in (got.data, got.metadata, done.data, done.result):
        assert back == value
        for found in (back["n"], back["list"][0], back["nested"]["n"]):  # type: ignore[index]
            assert type(found) is type(number) and found == number


def test_text_written_in_full_is_the_encoders_text_but_for_such_floats() -> None:
    value = {"e+ in a key": ["1e+20", 1, True, None, 1.5, {"2": [0.1]}], 3: "x", None: 2.5}
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert dumps({"big": 1e20, "e+": [-1.5e16]}) == (
        '{"big":100000000000000000000.0,"e+":[-15000000000000000.0]}'
    )
    assert json.loads(dumps([1e300]))[0] == 1e300
