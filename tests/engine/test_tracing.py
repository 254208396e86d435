"""A span per run attempt (OpenTelemetry), in the trace of the caller that triggered it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.engine import tasks
from tickwork import Scheduler
from tickwork.engine.tracing import trace_id_of
from tickwork.errors import ValidationError

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"

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
    assert trace_id_of(None) is None and trace_id_of("") is None
    for bad in ("00-xyz", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"ff-{TRACE}-00f067aa0ba902b7-01"):
        with pytest.raises(ValidationError, match="traceparent"):
            trace_id_of(bad)


async def test_each_attempt_is_a_span_in_the_callers_trace(
    scheduler: Scheduler, spans: InMemorySpanExporter
) -> None:
    await scheduler.add_schedule(
        "flaky", "manual", id="f", data={"fail_times": 1}, retry={"delay": 0.01, "jitter": False}
    )
    run = await scheduler.run_now("f", wait=True, timeout=10, traceparent=TRACEPARENT)
    assert run.status == "succeeded" and run.attempt == 2
    assert run.trace_id == TRACE  # stored on the run
    mine = [s for s in spans.get_finished_spans() if s.attributes["tickwork.run_id"] == run.id]
    assert [s.attributes["tickwork.attempt"] for s in mine] == [1, 2]
    assert {format(s.context.trace_id, "032x") for s in mine} == {TRACE}
    assert len({s.parent.span_id for s in mine if s.parent}) == 1  # one parent per run
    assert [s.status.status_code for s in mine] == [
        trace.StatusCode.ERROR,
        trace.StatusCode.OK,
    ]
    assert mine[0].name == "run flaky" and mine[0].attributes["tickwork.schedule_id"] == "f"


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
