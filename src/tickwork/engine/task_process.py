"""An attempt in a process of its own (``executor="process"``), which never outlives it.

The child starts a session of its own, so the processes the task starts are in its
process group, and killing the group (on timeout, cancellation, or when the attempt is
over) takes them too. It dies with its node: on Linux the kernel sends it SIGTERM when
the node dies (``PR_SET_PDEATHSIG``), and on every system a thread in it watches a pipe
whose other end only the node holds, and the node's pid; either way the child kills its
whole group. So after a node is SIGKILLed, the run's retry elsewhere never overlaps
the attempt that was running there.

Limits: a process that starts a session of its own (``setsid``, ``start_new_session``)
leaves the group and is not killed; on Linux the parent-death signal follows the thread
that started the child, the event loop's, which lives as long as the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback as tb
from typing import Any, Final

from tickwork.engine import forks
from tickwork.engine.context import (
    LogCapture,
    RunContext,
    current_capture,
    install_log_capture,
    route_print_output,
)
from tickwork.engine.registry import TaskDef
from tickwork.limits import MAX_JSON_DEPTH, MAX_RESULT_BYTES, json_depth_over
from tickwork.models import JSON, LogRecord

#: ``prctl`` option: the signal this process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG: Final = 1
#: How often the child checks that its node is alive besides watching the pipe.
PARENT_CHECK: Final = 1.0
#: After sending its result, how long the child gets to exit before its group is killed.
EXIT_WAIT: Final = 5.0
#: How often the child sends the node the log lines its task emitted since the last send.
LIVE_SEND: Final = 0.5

_MP = multiprocessing.get_context("spawn")


#: An exception's text when its ``__str__`` fails (the words ``traceback`` uses).
STR_FAILED: Final = "<exception str() failed>"


def describe(exc: BaseException) -> str:
    """``Type: message`` (``Type`` alone without one). Never raises: the exception is a
    task's, whose ``__str__`` may raise or return no string, and its attempt must still
    end with an error that says what was raised."""
    try:
        text = str(exc)
    except BaseException:  # whatever it raises, the attempt's end must not
        text = STR_FAILED
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


#: Integers from this size on are encoded to be checked: Python writes none of more than
#: ``sys.get_int_max_str_digits()`` digits (4300) as text, JSON included.
_BIG: Final = 1 << 64


def check_json(value: Any) -> str | None:
    """None when ``value`` is JSON-serializable within the limits a result is stored
    with (``MAX_RESULT_BYTES``, ``MAX_JSON_DEPTH``), else the reason."""
    if value is None or type(value) is bool or (type(value) is int and -_BIG < value < _BIG):
        return None  # most tasks return one of these: no need to encode
    if type(value) is str:
        if len(value) * 4 <= MAX_RESULT_BYTES:
            return None
        text = value
    else:
        if json_depth_over(value):
            return f"the task returned a value nested deeper than {MAX_JSON_DEPTH} levels"
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            return f"the task returned a value that is not JSON: {exc}"
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_RESULT_BYTES:
        return f"the task returned {size} bytes of JSON; at most {MAX_RESULT_BYTES} are stored"
    return None


async def run_in_process(
    task: TaskDef, ctx: RunContext, timeout: float, capture: LogCapture
) -> dict[str, Any]:
    """Run one attempt in a fresh child process and return its message: ``status``
    (succeeded, failed, timed_out), ``result``, ``error``, ``traceback``, ``logs``.
    On cancellation the child's group is killed and ``CancelledError`` propagates."""
    results, results_in = _MP.Pipe(duplex=False)
    # The child watches ``alive``: it reads EOF once this process is gone.
    alive, alive_out = _MP.Pipe(duplex=False)
    payload = {
        "run_id": ctx.run_id,
        "schedule_id": ctx.schedule_id,
        "task": ctx.task,
        "scheduled_for": ctx.scheduled_for,
        "attempt": ctx.attempt,
        "trigger": ctx.trigger,
        "node": ctx.node,
        "data": ctx.data,
        "trace_id": ctx.trace_id,
    }
    # The child stores records at the level this node logs at (its root logger's).
    level = logging.getLogger().getEffectiveLevel()
    # The attempt's span (current here when tracing) goes on in the child.
    from tickwork.engine import tracing  # loaded by the node already; not by a child

    traceparent = tracing.current_traceparent() if tracing.ENABLED else None
    proc = _MP.Process(
        target=_child_main,
        args=(
            task.fn,
            task.takes_ctx,
            payload,
            results_in,
            alive,
            os.getpid(),
            level,
            traceparent,
        ),
        name=f"tickwork-run-{ctx.run_id}",
        daemon=True,
    )
    try:
        proc.start()
    except Exception as exc:  # the task cannot be sent to a process (not picklable, ...)
        results.close()
        alive_out.close()
        return {
            "status": "failed",
            "error": f"cannot start the task's process: {describe(exc)}",
            "traceback": tb.format_exc(),
            "logs": capture.result(),
        }
    finally:
        results_in.close()
        alive.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            try:
                ready = await loop.run_in_executor(
                    None, _wait_readable, results, proc, max(0.0, deadline - loop.time())
                )
            except asyncio.CancelledError:
                await asyncio.shield(loop.run_in_executor(None, kill_group, proc))
                raise
            if not ready:
                await loop.run_in_executor(None, kill_group, proc)
                return {
                    "status": "timed_out",
                    "error": f"timed out after {timeout:g} s (process {proc.pid} and its "
                    "children killed)",
                    "logs": (*capture.remote, *capture.result()),
                }
            try:
                message: dict[str, Any] = results.recv()
            except (EOFError, OSError):
                await loop.run_in_executor(None, _end_group, proc)
                return {
                    "status": "failed",
                    "error": f"the task process exited with code {proc.exitcode} without a result",
                    "logs": (*capture.remote, *capture.result()),
                }
            if "status" in message:
                break
            capture.add_remote(message["live"])  # lines sent while it runs
        await loop.run_in_executor(None, _end_group, proc)
        message["logs"] = tuple(message.get("logs", ())) + capture.result()
        return message
    finally:
        results.close()
        alive_out.close()


def _wait_readable(conn: multiprocessing.connection.Connection, proc: Any, timeout: float) -> bool:
    """True when a result (or EOF) is ready within ``timeout``."""
    ready = multiprocessing.connection.wait([conn, proc.sentinel], timeout=timeout)
    if conn in ready:
        return True
    # The process ended; a result may still be in the pipe, else EOF is reported.
    return bool(ready)


def kill_group(proc: Any) -> None:
    """Kill the child and every process in its group, then reap the child.

    The group is killed before the child is reaped: until then its pid (the group's id)
    cannot be taken by another process. A child that has not made its session yet has
    no process of its own either, and is killed alone.
    """
    if hasattr(os, "killpg") and proc.pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.exitcode is None:
        proc.kill()
    proc.join(5)


def _end_group(proc: Any) -> None:
    """After the result: let the child exit, then kill what it left running."""
    multiprocessing.connection.wait([proc.sentinel], timeout=EXIT_WAIT)
    kill_group(proc)


# -- in the child ------------------------------------------------------------------------


def _kill_own_group(*_: object) -> None:
    """Kill this process and every process of its group (only when it leads the group:
    before its session is made, the group is the node's)."""
    if hasattr(os, "killpg") and os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(alive: multiprocessing.connection.Connection, parent_pid: int) -> None:
    """Until the node is gone (EOF on ``alive``, or another parent pid), then kill the
    group."""
    while True:
        try:
            if alive.poll(PARENT_CHECK):
                break  # EOF: the node closed its end or died
        except (EOFError, OSError):
            break
        if os.getppid() != parent_pid:
            break
    _kill_own_group()


def die_with_parent(alive: multiprocessing.connection.Connection, parent_pid: int) -> None:
    """Make this child process, and the processes it will start, die with its node."""
    if hasattr(os, "setsid"):
        with contextlib.suppress(OSError):
            os.setsid()
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _kill_own_group)
        _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the node died before the signal was set up
        _kill_own_group()
    threading.Thread(
        target=_watch_parent, args=(alive, parent_pid), name="tickwork-parent", daemon=True
    ).start()


def _span_of_attempt(traceparent: str | None) -> contextlib.AbstractContextManager[None]:
    """The attempt's span made current in the child (opentelemetry is imported only
    when the node traced the attempt)."""
    if traceparent is None:
        return contextlib.nullcontext()
    from tickwork.engine import tracing

    return tracing.continued(traceparent)


def _child_main(
    fn: Any,
    takes_ctx: bool,
    payload: dict[str, Any],
    conn: Any,
    alive: multiprocessing.connection.Connection,
    parent_pid: int,
    level: int,
    traceparent: str | None = None,
) -> None:
    """Entry point of the child process: run the task, send back one message."""
    die_with_parent(alive, parent_pid)
    install_log_capture()
    logging.getLogger().setLevel(level)
    ctx = RunContext(**payload)
    capture = LogCapture(ctx.attempt, ctx.run_id)
    current_capture.set(capture)
    route_print_output()
    sender = _LiveSender(conn, capture)
    message: dict[str, Any]
    try:
        args = (ctx,) if takes_ctx else ()
        with _span_of_attempt(traceparent):
            value: JSON | Any = fn(*args, **ctx.data)
            if asyncio.iscoroutine(value):
                value = asyncio.run(value)
        if forks.forked_run is not None:  # a child the task forked, leaving it
            forks.leave()
        reason = check_json(value)
        if reason is not None:
            message = {"status": "failed", "error": reason}
        else:
            message = {"status": "succeeded", "result": value}
    except BaseException as exc:
        if forks.forked_run is not None:
            forks.leave(exc)
        message = {"status": "failed", "error": describe(exc), "traceback": tb.format_exc()}
    logs: tuple[LogRecord, ...] = capture.result()
    message["logs"] = logs
    try:
        try:
            sender.send_last(message)
        except (OSError, EOFError):
            raise  # the node is gone: no one to tell
        except Exception as exc:  # its result cannot be pickled (a str subclass of its own...)
            error = f"the task's result cannot be sent to its node: {describe(exc)}"
            sender.send_last({"status": "failed", "error": error, "logs": logs})
    finally:
        conn.close()


class _LiveSender:
    """Sends the node the attempt's new log lines every ``LIVE_SEND`` seconds while the
    task runs (``{"live": lines}``), so they are shown before it ends; the final message
    carries every line again."""

    def __init__(self, conn: Any, capture: LogCapture) -> None:
        self._conn = conn
        self._capture = capture
        self._lock = threading.Lock()
        self._done = False
        self._sent = 0
        threading.Thread(target=self._run, name="tickwork-live-logs", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(LIVE_SEND)
            with self._lock:
                if self._done:
                    return
                new, _ = self._capture.since(self._sent, 0)
                if not new:
                    continue
                self._sent += len(new)
                try:
                    self._conn.send({"live": tuple(new)})
                except (OSError, ValueError):
                    return

    def send_last(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._done = True
            self._conn.send(message)
