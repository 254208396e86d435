"""OpenTelemetry: a span per run attempt, in the trace of whoever triggered the run.

Only when ``opentelemetry-api`` is installed (``pip install tickwork[otel]``), and it
records only when the program configured an SDK and exporter; otherwise nothing here
costs more than a flag test per attempt. Installed but not configured (no tracer
provider set), an attempt gets a span only when its run carries a trace id, whose
context a task may pass on (headers of its requests); else its span would be the
invalid one, made at the cost of a fifth of a short sync run's start.

A run triggered with a W3C ``traceparent`` (``POST /api/v1/schedules/{id}/run`` takes
the caller's header, ``Scheduler.run_now(traceparent=...)`` takes it from Python)
stores its trace id in ``run.trace_id``, the caller's span id (the header's
parent-id) in ``run.parent_span_id`` and its trace flags in ``run.trace_flags``. Each
attempt's span is then a child of the caller's span, so every attempt of the run
(retries, on any node) appears under the span that triggered it in a trace viewer, and
is sampled or not as the caller's span was when the tracer provider's sampler follows
the parent (``ParentBased``, the SDK's default). A run stored with a trace id but no span id
(stored before tickwork kept it) gets a parent whose span id is derived from the run
id: its attempts stay in the caller's trace, grouped under one parent that no
exporter reports. Runs of the schedule start a new trace per attempt.

A task on the process executor runs under its attempt's span too: the child process is
given the span's ``traceparent`` and makes it current (``continued``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from tickwork.errors import ValidationError
from tickwork.models import Run

try:
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised where opentelemetry is absent
    _trace = None  # type: ignore[assignment]

#: Whether attempts are traced (opentelemetry-api is importable).
ENABLED: Final = _trace is not None


#: Whether a tracer provider was set (it is set once per process, never unset).
_provider_set = False


def wanted(run: Run) -> bool:
    """Whether an attempt of ``run`` gets a span: a tracer provider is set (one that
    records), or the run belongs to a caller's trace."""
    global _provider_set
    if _trace is None:
        return False
    if _provider_set or run.trace_id is not None:
        return True
    _provider_set = not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)
    return _provider_set


_TRACEPARENT: Final = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
#: A version above 00: the same four fields first, then what that version adds after
#: a dash, which a reader of version 00 skips (W3C Trace Context, "Versioning of
#: traceparent").
_LATER_VERSION: Final = re.compile(
    r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$"
)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a W3C ``traceparent`` header; None when absent.
    A malformed one is a ``ValidationError`` naming it."""
    found = trace_context_of(traceparent)
    return None if found is None else found[0]


def trace_context_of(traceparent: str | None) -> tuple[str, str, int] | None:
    """The trace id (32 hex digits), the caller's span id (the parent-id, 16 hex
    digits) and the trace flags (1: sampled) of a W3C ``traceparent`` header; None when
    absent. A malformed one is a ``ValidationError`` naming it."""
    if traceparent is None or traceparent.strip() == "":
        return None
    text = traceparent.strip().lower()
    match = _TRACEPARENT.match(text)
    if match is None and not text.startswith("00-"):
        match = _LATER_VERSION.match(text)
    if (
        match is None
        or match.group(1) == "ff"
        or set(match.group(2)) == {"0"}
        or set(match.group(3)) == {"0"}
    ):
        raise ValidationError(
            f"traceparent {traceparent[:80]!r} is not a W3C trace context"
            " (version-traceid-parentid-flags, e.g. 00-<32 hex>-<16 hex>-01)",
            field="traceparent",
        )
    return match.group(2), match.group(3), int(match.group(4), 16)


def _parent_span_id(run_id: str) -> int:
    """The parent of the attempts of a run stored with a trace id but no span id."""
    value = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")
    return value or 1


@contextmanager
def attempt_span(run: Run, node: str) -> Iterator[Any]:
    """The span of one attempt of ``run`` on ``node`` (None when tracing is off)."""
    if _trace is None:
        yield None
        return
    context = None
    if run.trace_id:
        parent = _trace.SpanContext(
            trace_id=int(run.trace_id, 16),
            span_id=(
                int(run.parent_span_id, 16) if run.parent_span_id else _parent_span_id(run.id)
            ),
            is_remote=True,
            # As the caller sent them: a parent-based sampler records the attempts only
            # if the caller sampled its span. Runs stored without them count as sampled.
            trace_flags=_trace.TraceFlags(
                _trace.TraceFlags.SAMPLED if run.trace_flags is None else run.trace_flags
            ),
        )
        context = _trace.set_span_in_context(_trace.NonRecordingSpan(parent))
    tracer = _trace.get_tracer("tickwork")
    attributes: dict[str, Any] = {
        "tickwork.run_id": run.id,
        "tickwork.task": run.task,
        "tickwork.attempt": run.attempt,
        "tickwork.trigger": run.trigger,
        "tickwork.node": node,
        "tickwork.scheduled_for": run.scheduled_for.isoformat(),
    }
    if run.schedule_id is not None:
        attributes["tickwork.schedule_id"] = run.schedule_id
    with tracer.start_as_current_span(
        f"run {run.task}",
        context=context,
        kind=_trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except asyncio.CancelledError:
            # Stopped before it ended (a cancel asked for, the node shutting down): no
            # result reaches end_span, and an exporter would show it neither failed
            # nor succeeded.
            end_span(span, "cancelled", "the attempt was cancelled before it ended")
            raise


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span current here (an attempt's, around its
    executor), for a child process to continue; None when there is none."""
    if _trace is None:
        return None
    context = _trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """In a task's child process: the attempt's span (``current_traceparent`` in the
    node) is the current span while the task runs, so the spans the task makes, and the
    trace context its instrumented requests carry, are under its attempt."""
    if _trace is None or traceparent is None:
        yield
        return
    match = _TRACEPARENT.match(traceparent)
    if match is None:
        yield
        return
    parent = _trace.SpanContext(
        trace_id=int(match.group(2), 16),
        span_id=int(match.group(3), 16),
        is_remote=True,
        trace_flags=_trace.TraceFlags(int(match.group(4), 16)),
    )
    with _trace.use_span(_trace.NonRecordingSpan(parent), end_on_exit=False):
        yield


def end_span(span: Any, status: str, error: str | None) -> None:
    """Record how the attempt ended on its span."""
    if span is None or _trace is None:
        return
    span.set_attribute("tickwork.status", status)
    if status == "succeeded":
        span.set_status(_trace.Status(_trace.StatusCode.OK))
    else:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, error or status))
