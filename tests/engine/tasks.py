"""Tasks used by the engine tests (importable, so the process executor can load them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import Any

from tickwork import RunContext, TaskRegistry, task

registry = TaskRegistry()
calls: list[dict[str, Any]] = []
log = logging.getLogger("tests.engine.tasks")


@task("add", registry=registry)
async def add(ctx: RunContext, *, a: int, b: int = 0) -> int:
    calls.append({"task": "add", "run_id": ctx.run_id, "attempt": ctx.attempt, "a": a, "b": b})
    return a + b


@task("noop", registry=registry)
async def noop() -> None:
    calls.append({"task": "noop"})


@task("sync_echo", registry=registry)
def sync_echo(ctx: RunContext, **data: Any) -> dict[str, Any]:
    ctx.logger.info("echoing %s", sorted(data))
    logging.getLogger("some.library").warning("library says hi")
    return {"data": data, "attempt": ctx.attempt}


@task("flaky", registry=registry, retries=2)
async def flaky(ctx: RunContext, *, fail_times: int) -> str:
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"failure on attempt {ctx.attempt}")
    return f"ok on attempt {ctx.attempt}"


@task("always_fails", registry=registry)
async def always_fails() -> None:
    raise ValueError("boom")


@task("slow_async", registry=registry)
async def slow_async(*, seconds: float = 10) -> str:
    await asyncio.sleep(seconds)
    return "done"


@task("not_json", registry=registry)
async def not_json() -> object:
    return object()


@task("big_result", registry=registry)
def big_result(*, size: int = 0, depth: int = 0, digits: int = 0) -> object:
    """A result of ``size`` characters, nested ``depth`` levels deep, or an integer of
    ``digits`` digits."""
    if digits:
        return 10 ** (digits - 1)
    if depth:
        value: object = []
        for _ in range(depth):
            value = [value]
        return value
    return {"text": "x" * size}


@task("big_result_process", registry=registry, executor="process")
def big_result_process(*, size: int) -> object:
    return {"text": "x" * size}


@task("spin_forever", registry=registry, executor="process")
def spin_forever(*, marker: str) -> None:
    with open(marker, "w") as fh:
        fh.write(str(os.getpid()))
    while True:
        time.sleep(0.01)


@task("process_square", registry=registry, executor="process")
def process_square(ctx: RunContext, *, x: int) -> dict[str, int]:
    ctx.logger.info("squaring %d in pid %d", x, os.getpid())
    return {"square": x * x, "pid": os.getpid()}


@task("nul_everywhere", registry=registry)
def nul_everywhere(ctx: RunContext, *, fail: bool = True) -> dict[str, str]:
    """Text PostgreSQL cannot store in text or jsonb: NUL, and a lone surrogate."""
    ctx.logger.warning("log a\x00b")
    if fail:
        raise ValueError("bad\x00value \ud800")
    return {"text": "a\x00b", "k\x00": "\ud800"}


@task("log_marker", registry=registry)
def log_marker(ctx: RunContext) -> str:
    ctx.logger.warning("XYZZY")
    return "logged"


#: Set to let ``hang_sync`` tasks return (tests set it when they are done).
release = threading.Event()


@task("hang_sync", registry=registry)
def hang_sync() -> str:
    """A sync task that ignores ``ctx.cancelled`` and returns only when released."""
    release.wait(120)
    return "released"


#: ``sync_counted``: how many run at once now, and the most seen (under ``counting``).
counting = threading.Lock()
running_now = 0
most_running = 0


@task("sync_counted", registry=registry)
def sync_counted(ctx: RunContext) -> str:
    """A short sync task that counts how many of it run at once."""
    global running_now, most_running
    with counting:
        running_now += 1
        most_running = max(most_running, running_now)
    time.sleep(0.001)
    with counting:
        running_now -= 1
    return ctx.run_id


#: ``sync_first_quick``: how many have started and ended (under ``counting``).
quick_started = 0
quick_ended = 0


@task("sync_first_quick", registry=registry)
def sync_first_quick(ctx: RunContext) -> str:
    """A sync task whose first run returns at once and the others after 0.2 s: the
    first end reaches the finisher alone, well before the rest."""
    global quick_started, quick_ended
    with counting:
        quick_started += 1
        first = quick_started == 1
    if not first:
        time.sleep(0.2)
    with counting:
        quick_ended += 1
    return ctx.run_id


#: Set to let the second attempt of ``fails_then_waits`` return.
second_release = threading.Event()


@task("fails_then_waits", registry=registry)
def fails_then_waits(ctx: RunContext) -> int:
    """A sync task whose first attempt fails at once and whose next waits to be released."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    second_release.wait(30)
    return ctx.attempt


class _OwnBaseException(BaseException):
    """Not an ``Exception``: what a library's control-flow signal may look like."""


#: What ``raise_base`` raises, by the name it is given.
BASE_EXCEPTIONS: dict[str, BaseException] = {
    "SystemExit": SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "GeneratorExit": GeneratorExit(),
    "_OwnBaseException": _OwnBaseException("not an Exception"),
}


@task("raise_base", registry=registry)
async def raise_base(*, name: str) -> None:
    """An async task raising a ``BaseException`` that is no ``Exception`` (sys.exit()...)."""
    raise BASE_EXCEPTIONS[name]


@task("raise_base_sync", registry=registry)
def raise_base_sync(*, name: str) -> None:
    raise BASE_EXCEPTIONS[name]


#: Set to let ``deaf`` tasks return.
deaf_release = asyncio.Event()


@task("deaf", registry=registry)
async def deaf() -> str:
    """An async task that ignores its cancellation until released."""
    while not deaf_release.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)
    return "released"


@task("block_loop", registry=registry)
async def block_loop(*, seconds: float) -> str:
    """An async task calling blocking code: the whole event loop waits."""
    time.sleep(seconds)  # noqa: ASYNC251 (the blocking this task is for)
    return "done"


class _StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class _StrReturnsInt(Exception):
    def __str__(self) -> str:
        return 42  # type: ignore[return-value]


class _Unprintable(Exception):
    """Neither ``str`` nor ``repr`` works: each raises the exception itself."""

    def __str__(self) -> str:
        raise self

    def __repr__(self) -> str:
        raise self


#: What ``raise_unprintable`` raises, by the name it is given.
UNPRINTABLE: dict[str, type[Exception]] = {
    "_StrRaises": _StrRaises,
    "_StrReturnsInt": _StrReturnsInt,
    "_Unprintable": _Unprintable,
}


@task("raise_unprintable", registry=registry)
async def raise_unprintable(*, name: str) -> None:
    raise UNPRINTABLE[name]("text")


@task("raise_unprintable_sync", registry=registry)
def raise_unprintable_sync(*, name: str) -> None:
    raise UNPRINTABLE[name]("text")


@task("raise_unprintable_process", registry=registry, executor="process")
def raise_unprintable_process(*, name: str) -> None:
    raise UNPRINTABLE[name]("text")


@task("raise_cancelled", registry=registry)
async def raise_cancelled(*, how: str) -> None:
    """A ``CancelledError`` that is no stop of the node's: raised by the task, or from
    awaiting a future something else cancelled."""
    if how == "raise":
        raise asyncio.CancelledError("given up on the upstream")
    if how == "cancel_itself":
        current = asyncio.current_task()
        assert current is not None
        current.cancel()
        await asyncio.sleep(0)
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.cancel()
    await future


@task("raise_cancelled_sync", registry=registry)
def raise_cancelled_sync(*, how: str) -> None:
    raise asyncio.CancelledError("given up on the upstream")


def _text_of_its_own() -> type[str]:
    class Text(str):
        """A ``str`` to JSON, but a class pickle cannot find by its name."""

    return Text


@task("unpicklable_result_process", registry=registry, executor="process")
def unpicklable_result_process() -> str:
    return _text_of_its_own()("JSON, but no pickle")


@task("process_trace_context", registry=registry, executor="process")
def process_trace_context() -> dict[str, str]:
    """The trace context current in the child process while the task runs."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "sampled": str(context.trace_flags.sampled),
    }
