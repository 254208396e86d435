"""A span per run attempt (OpenTelemetry), in the trace of the caller that triggered it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.engine import tasks
from tickwork import Scheduler
from tickwork.engine.tracing import _parent_span_id, trace_context_of, trace_id_of
from tickwork.errors import ValidationError
from tickwork.models import Run

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
#: The caller's span: the one whose request triggered the run.
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{CALLER_SPAN}-01"

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    # The global provider can be set once per process: one for the whole module.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
async def scheduler(db_url: str) -> AsyncIterator[Scheduler]:
    """On the real clock: the retry below waits its real (short) delay."""
    async with Scheduler(db_url, registry=tasks.registry, shutdown_grace=1) as s:
        yield s


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_a_traceparent_gives_its_trace_id_and_a_bad_one_is_named() -> None:
    assert trace_id_of(TRACEPARENT) == TRACE
    assert trace_context_of(TRACEPARENT) == (TRACE, CALLER_SPAN, 1)
    assert trace_context_of(f"00-{TRACE.upper()}-{CALLER_SPAN.upper()}-00 ") == (
        TRACE,
        CALLER_SPAN,
        0,
    )
    assert trace_context_of(None) is None and trace_context_of(" ") is None
    assert trace_id_of(None) is None and trace_id_of("") is None
    for bad in ("00-xyz", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"ff-{TRACE}-00f067aa0ba902b7-01"):
        with pytest.raises(ValidationError, match="traceparent"):
            trace_id_of(bad)
        with pytest.raises(ValidationError, match="traceparent"):
            trace_context_of(bad)


async def test_each_attempt_is_a_span_in_the_callers_trace(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    await scheduler.add_schedule(
        "flaky", "manual", id="f", data={"fail_times": 1}, retry={"delay": 0.01, "jitter": False}
    )
    run = await scheduler.run_now("f", wait=True, timeout=10, traceparent=TRACEPARENT)
    assert run.status == "succeeded" and run.attempt == 2
    assert (run.trace_id, run.parent_span_id) == (TRACE, CALLER_SPAN)  # stored on the run
    mine = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert [s.attributes["tickwork.attempt"] for s in mine] == [1, 2]
    assert {format(s.context.trace_id, "032x") for s in mine} == {TRACE}
    # Both attempts, the retry too, are children of the caller's span.
    assert [s.parent and format(s.parent.span_id, "016x") for s in mine] == [CALLER_SPAN] * 2
    assert all(s.parent and s.parent.is_remote for s in mine)
    assert [s.status.status_code for s in mine] == [
        trace.StatusCode.ERROR,
        trace.StatusCode.OK,
    ]
    assert mine[0].name == "run flaky" and mine[0].attributes["tickwork.schedule_id"] == "f"


async def test_a_run_triggered_inside_a_span_joins_that_trace(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    """Instrumented code (or a request to an instrumented ``serve``) that triggers a run
    without passing a ``traceparent``: its current span is the caller's, so the run and
    each attempt are in that trace, not each attempt in a trace of its own."""
    await scheduler.add_schedule(
        "flaky", "manual", id="f", data={"fail_times": 1}, retry={"delay": 0.01, "jitter": False}
    )
    with trace.get_tracer("caller").start_as_current_span("trigger") as caller:
        run = await scheduler.run_now("f")
    context = caller.get_span_context()
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    assert (run.trace_id, run.parent_span_id) == (trace_id, span_id)
    assert run.trace_flags == int(context.trace_flags) and run.trace_flags & 1  # sampled
    final = await scheduler.wait_for_run(run.id, timeout=10)
    assert final.status == "succeeded" and final.attempt == 2
    mine = [s for s in spans.get_finished_spans() if s.attributes.get("tickwork.run_id") == run.id]
    assert {format(s.context.trace_id, "032x") for s in mine} == {trace_id}
    assert [s.parent and format(s.parent.span_id, "016x") for s in mine] == [span_id] * 2
    # Outside any span, a run still starts a trace of its own per attempt.
    other = await scheduler.run_now("f", wait=True, timeout=10)
    assert other.trace_id is None


async def test_an_attempt_cancelled_while_running_ends_its_span_as_cancelled(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    """A cancelled attempt returns no result: its span ended with no status at all
    (neither failed nor succeeded in a trace viewer) and no ``tickwork.status``."""
    await scheduler.add_schedule("slow_async", "manual", id="c", data={"seconds": 30})
    run = await scheduler.run_now("c", traceparent=TRACEPARENT)
    for _ in range(500):
        if (await scheduler.get_run(run.id)).status == "running":
            break
        await asyncio.sleep(0.01)
    await scheduler.cancel_run(run.id)
    assert (await scheduler.wait_for_run(run.id, timeout=15)).status == "cancelled"
    (span,) = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes["tickwork.status"] == "cancelled"


async def test_a_caller_that_did_not_sample_its_span_gets_no_attempt_recorded(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    """The SDK's default sampler follows the parent: a ``traceparent`` whose flags say
    not sampled (``-00``) leaves every attempt unsampled, the retry on another claim
    too, as the caller chose (they used to be exported, under a parent the backend
    never got). The task still sees the trace's context, flagged not sampled."""
    await scheduler.add_schedule(
        "flaky", "manual", id="f", data={"fail_times": 1}, retry={"delay": 0.01, "jitter": False}
    )
    unsampled = f"00-{TRACE}-{CALLER_SPAN}-00"
    run = await scheduler.run_now("f", wait=True, timeout=10, traceparent=unsampled)
    assert run.status == "succeeded" and run.attempt == 2
    assert (run.trace_id, run.parent_span_id, run.trace_flags) == (TRACE, CALLER_SPAN, 0)
    assert [
        s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id
    ] == []
    await scheduler.add_schedule("process_trace_context", "manual", id="c")
    seen = await scheduler.run_now("c", wait=True, timeout=30, traceparent=unsampled)
    assert seen.status == "succeeded", seen.error
    assert seen.result is not None and (seen.result["trace_id"], seen.result["sampled"]) == (  # type: ignore[index]
        TRACE,
        "False",
    )
    # A sampled caller, the same way: recorded.
    sampled = await scheduler.run_now("f", wait=True, timeout=10, traceparent=TRACEPARENT)
    assert sampled.trace_flags == 1
    mine = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == sampled.id]
    assert [s.attributes["tickwork.attempt"] for s in mine] == [1, 2]


async def test_an_attempt_on_the_process_executor_is_under_the_callers_span(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    """The span is the node's, around the child process that runs the task."""
    await scheduler.add_schedule("process_square", "manual", id="p", data={"x": 3})
    run = await scheduler.run_now("p", wait=True, timeout=30, traceparent=TRACEPARENT)
    assert run.status == "succeeded" and run.result["square"] == 9  # type: ignore[index]
    (span,) = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN


async def test_a_task_in_a_child_process_runs_under_its_attempts_span(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    """The spans a process-executor task makes, and the context its requests carry,
    are under its attempt: the child continues the attempt's span."""
    await scheduler.add_schedule("process_trace_context", "manual", id="c")
    run = await scheduler.run_now("c", wait=True, timeout=30, traceparent=TRACEPARENT)
    assert run.status == "succeeded", run.error
    (span,) = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert run.result == {
        "trace_id": TRACE,
        "span_id": format(span.context.span_id, "016x"),
        "sampled": "True",
    }


async def test_a_run_stored_with_only_a_trace_id_still_gets_a_span_in_that_trace(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    """Runs stored before tickwork kept the caller's span (their ``parent_span_id`` is
    empty after the upgrade) stay in their trace, under a parent derived from the run."""
    s = await scheduler.add_schedule("add", "manual", id="a", data={"a": 1, "b": 2})
    now = datetime.now(UTC)
    stored = Run(
        id="before-the-upgrade",
        schedule_id=s.id,
        task="add",
        scheduled_for=now,
        trigger="manual",
        data={"a": 1, "b": 2},
        due_at=now,
        created_at=now,
        trace_id=TRACE,
    )
    await asyncio.to_thread(scheduler.store.insert_runs, [stored])
    scheduler.engine.wake()  # type: ignore[union-attr]
    run = await scheduler.wait_for_run(stored.id, timeout=10)
    assert run.status == "succeeded" and run.parent_span_id is None
    (span,) = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None and span.parent.span_id == _parent_span_id(run.id)


async def test_a_run_without_a_caller_starts_its_own_trace(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    await scheduler.add_schedule("add", "manual", id="a", data={"a": 1})
    run = await scheduler.run_now("a", wait=True, timeout=10)
    assert run.trace_id is None
    (span,) = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert span.parent is None


async def test_without_a_tracer_provider_only_runs_of_a_callers_trace_get_a_span(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """opentelemetry installed but not configured: a span of an attempt would be the
    invalid span, made at a fifth of a short sync run's start; a run triggered with a
    traceparent still gets one (its context may travel on with the task's requests)."""
    from tickwork.engine import tracing

    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    monkeypatch.setattr(tracing, "_provider_set", False)
    spans_of: list[str | None] = []
    original = tracing.attempt_span

    def counted(run, node):  # type: ignore[no-untyped-def]
        spans_of.append(run.trace_id)
        return original(run, node)

    monkeypatch.setattr(tracing, "attempt_span", counted)
    async with Scheduler(db_url, registry=tasks.registry) as s:
        await s.add_schedule("noop", "manual", id="n")
        plain = await s.run_now("n", wait=True, timeout=10)
        traced = await s.run_now("n", wait=True, timeout=10, traceparent=TRACEPARENT)
    assert (plain.status, traced.status) == ("succeeded", "succeeded")
    assert spans_of == [TRACE]
