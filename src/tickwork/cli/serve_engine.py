"""``serve``'s engine: a node in a child process of its own, supervised by ``serve``.

Why a process: a node on a thread of the API's interpreter waits for the interpreter
lock at every step of a fire while requests hold it, so an API under load delayed
fires by tens of times their idle lag. In a process of its own the engine has an
interpreter to itself and the operating system shares the cores between the two.

The parent (``EngineSupervisor``, in ``serve``) starts ``python -m
tickwork.cli.serve_engine`` and writes it one JSON line on its stdin: the database, the
modules to import, serve's resolved node settings and its own pid. The child runs a
node exactly as ``tickwork worker`` does (``run_node``), logs to the same stderr, and
answers one JSON line on its stdout once its node runs (``{"node": ID}``), then one
each time the oldest of its store calls out past the warning threshold changes
(``{"store_call_since": UNIX_TIME | null}``, see ``engine.store_watch``) for
``tickwork_store_call_oldest_seconds``; anything else it would print goes to stderr.

The child never outlives ``serve``: on Linux the kernel sends it SIGKILL when ``serve``
dies (``PR_SET_PDEATHSIG``), and on every system a thread in it reads its stdin, whose
other end only ``serve`` holds, and kills it at end of file. A SIGKILL of ``serve`` is
thus a SIGKILL of its engine, as when both were one process: the runs it held are
taken over by the next node. A signal (SIGTERM, SIGINT) stops the child gracefully, once
(``serve`` forwards its own; a process manager may signal both).

If the child dies while ``serve`` is not stopping, the supervisor logs it at ERROR and
starts a new one after a backoff (1 s, doubling to 30 s; back to 1 s after a minute
of life); ``/health`` answers 503 meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from tickwork.cli.settings import Settings

log = logging.getLogger("tickwork.serve")

#: Seconds between two starts of the engine after it died: first, then doubled up to...
RESTART_FIRST: Final = 1.0
RESTART_MAX: Final = 30.0
#: ...and back to the first after the engine lived this long.
RESTART_RESET: Final = 60.0
#: Seconds a new engine process has to report its node running.
START_TIMEOUT: Final = 60.0
#: Seconds past the grace period before a stopping engine is killed.
STOP_MARGIN: Final = 5.0


class EngineStartError(RuntimeError):
    """The engine process exited, or said nothing, before its node ran."""


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class EngineSupervisor:
    """Starts the engine process, restarts it when it dies, stops it with ``serve``.

    ``alive`` and ``node_id`` are what ``/health`` and ``/metrics`` report
    (``tickwork.api.engine_status.EngineProcess``). Engine processes are started from
    one thread made with the supervisor, before ``serve`` lowers its own priority
    (``api_nice``; on Linux a thread's priority passes to the processes it starts), so
    a restarted engine keeps the priority of the first.
    """

    def __init__(self, db: str, imports: Sequence[str], settings: Settings) -> None:
        self._spec = json.dumps(
            {
                "db": db,
                "imports": list(imports),
                "values": dict(settings.values),
                "sources": dict(settings.sources),
                "file": None if settings.file is None else str(settings.file),
                "parent": os.getpid(),
            }
        )
        self._grace: float = settings["shutdown_grace"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._node: str | None = None
        self._stopping = asyncio.Event()
        self._supervising: asyncio.Task[None] | None = None
        self._born = 0.0  # time.monotonic() at the last start
        #: When (``time.time()``) the engine's oldest store call out past the warning
        #: threshold began, as its process last said (None: none is).
        self._store_call_since: float | None = None
        #: The engine processes whose reports a thread reads (by pid).
        self._reading: set[int] = set()
        #: Times the engine process was started (the first included).
        self.starts = 0
        # The thread that starts engine processes: it lives as long as serve (on Linux
        # the parent-death signal follows the thread that started the child).
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="tickwork-engine-start")
        self._spawner.submit(lambda: None).result()

    @property
    def alive(self) -> bool:
        """The engine process runs its node."""
        proc = self._proc
        return proc is not None and proc.poll() is None and self._node is not None

    @property
    def node_id(self) -> str | None:
        """The node of the current engine process (or of the last, while none runs)."""
        return self._node

    @property
    def store_call_oldest(self) -> float:
        """Seconds the engine's oldest store call has waited for the database, once past
        the warning threshold (0.0: none has, or no engine runs)."""
        since = self._store_call_since
        return 0.0 if since is None or not self.alive else max(0.0, time.time() - since)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _popen(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickwork.cli.serve_engine"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=os.getcwd(),
        )
        assert proc.stdin is not None
        proc.stdin.write(self._spec.encode() + b"\n")
        proc.stdin.flush()  # the pipe stays open: its end of file means "serve died"
        os.set_blocking(proc.stdin.fileno(), False)  # wake-ups never wait (``wake``)
        return proc

    def wake(self, due_at: datetime | None = None) -> None:
        """Tell the engine process a change was made here (one line on its stdin: the
        instant the new work is due, or empty for "look now"), so it looks at the
        database at once instead of when it hears of the commit (SQLite: its next look
        at the file's change counter, up to 50 ms later). Never blocks: when the pipe
        is full the engine has wake-ups to read anyway."""
        proc = self._proc
        if proc is None or proc.stdin is None or self._node is None:
            return
        line = b"\n" if due_at is None else due_at.isoformat().encode() + b"\n"
        with contextlib.suppress(OSError, ValueError):  # full, closed, or being replaced
            os.write(proc.stdin.fileno(), line)

    async def launch(self) -> None:
        """Start the engine process (it then starts its node while ``serve`` starts the
        API); ``ready`` waits for its node."""
        self.starts += 1
        self._node = None
        self._store_call_since = None
        self._born = time.monotonic()
        loop = asyncio.get_running_loop()
        self._proc = await loop.run_in_executor(self._spawner, self._popen)

    async def ready(self) -> str:
        """Wait for the launched engine's node to run, then supervise it; the node's id.
        ``EngineStartError`` when it fails (``serve`` then stops)."""
        await self._wait_node()
        self._supervising = asyncio.create_task(self._supervise(), name="tickwork-engine")
        assert self._node is not None
        return self._node

    async def _wait_node(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), START_TIMEOUT)
        except TimeoutError:
            proc.kill()  # its stdout closes: the read above ends
            await asyncio.to_thread(proc.wait)
            raise EngineStartError(
                f"the engine process did not start its node in {START_TIMEOUT:g} s"
            ) from None
        try:
            node = json.loads(line)["node"]
        except (ValueError, KeyError, TypeError):
            code = await asyncio.to_thread(proc.wait)
            raise EngineStartError(
                f"the engine process {describe_exit(code)} before its node ran (see the log above)"
            ) from None
        self._node = str(node)
        log.info("engine process %d runs node %s", proc.pid, node)
        self._reading.add(proc.pid)
        threading.Thread(
            target=self._read_reports, args=(proc,), name="tickwork-engine-reports", daemon=True
        ).start()

    def _read_reports(self, proc: subprocess.Popen[bytes]) -> None:
        """On a thread of its own: what the engine process says once its node runs,
        until it exits (end of file; the thread then closes the pipe, which a close
        from another thread would wait on)."""
        stdout = proc.stdout
        assert stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in stdout:
                try:
                    report = json.loads(line)
                    since = report["store_call_since"]
                except (ValueError, KeyError, TypeError):
                    continue
                if proc is self._proc:
                    self._store_call_since = None if since is None else float(since)
        with contextlib.suppress(OSError, ValueError):
            stdout.close()

    async def _supervise(self) -> None:
        """Wait for the engine process to end; unless ``serve`` is stopping, start a
        new one after the backoff."""
        delay = RESTART_FIRST
        while True:
            proc = self._proc
            assert proc is not None
            code = await asyncio.to_thread(proc.wait)
            if self._stopping.is_set():
                return
            if time.monotonic() - self._born >= RESTART_RESET:
                delay = RESTART_FIRST
            log.error(
                "engine process %d (node %s) %s; serve has no engine: starting a new one in %g s",
                proc.pid,
                self._node,
                describe_exit(code),
                delay,
            )
            self._close(proc)
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
                delay = min(RESTART_MAX, delay * 2)
                try:
                    await self.launch()
                    await self._wait_node()
                except (EngineStartError, OSError) as exc:
                    log.error("%s; trying again in %g s", exc, delay)
                    continue
                break

    async def stop(self, grace: float | None = None) -> None:
        """Stop the engine gracefully: SIGTERM, up to ``grace`` (the setting) plus a
        margin for its running runs to finish, then SIGKILL."""
        grace = self._grace if grace is None else grace
        self._stopping.set()
        if self._supervising is not None:
            self._supervising.cancel()  # waiting for an exit, a backoff or a start
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervising
            self._supervising = None
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, grace + STOP_MARGIN)
                except subprocess.TimeoutExpired:
                    log.warning("engine process %d did not stop in time: killing it", proc.pid)
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
            code = proc.returncode
            if code not in (0, None):
                log.warning("engine process %d %s while stopping", proc.pid, describe_exit(code))
            self._close(proc)
        self._spawner.shutdown(wait=False)

    def _close(self, proc: subprocess.Popen[bytes]) -> None:
        """Close its pipes; a stdout whose reports a thread reads is closed by it."""
        pipes = [proc.stdin] if proc.pid in self._reading else [proc.stdin, proc.stdout]
        for pipe in pipes:
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


# -- the child ---------------------------------------------------------------------------


def _read_spec() -> dict[str, Any]:
    """The first line of stdin (read from the descriptor: what follows it is wake-ups,
    which the watcher reads)."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit("tickwork.cli.serve_engine is started by tickwork serve")
        data += chunk
    spec: dict[str, Any] = json.loads(data.partition(b"\n")[0])
    return spec


class ParentLink:
    """The engine process's side of its stdin: wake-ups from ``serve``, and its death."""

    def __init__(self, parent: int) -> None:
        from tickwork.engine.task_process import _set_parent_death_signal

        self.wake: Callable[[datetime | None], None] | None = None
        _set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:  # serve died before the signal was set up
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Thread(target=self._watch, name="tickwork-parent", daemon=True).start()

    def _watch(self) -> None:
        """Read wake-ups until end of file (only ``serve`` holds the pipe's other end),
        then SIGKILL this process. The descriptor, not sys.stdin: a daemon thread
        blocked holding the buffer's lock would abort the interpreter's shutdown."""
        rest = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(0, 65536):
                *lines, rest = (rest + chunk).split(b"\n")
                if lines and self.wake is not None:
                    self.wake(_earliest(lines))
        os.kill(os.getpid(), signal.SIGKILL)


def _earliest(lines: list[bytes]) -> datetime | None:
    """The earliest instant the wake-ups announce; None if one asks to look now."""
    earliest: datetime | None = None
    for line in lines:
        try:
            at = datetime.fromisoformat(line.decode())
        except ValueError:
            return None
        if earliest is None or at < earliest:
            earliest = at
    return earliest


def child_main() -> None:
    """The engine process: read the spec, run the node until signalled."""
    spec = _read_spec()
    link = ParentLink(int(spec["parent"]))
    # Only the "node running" line goes to serve on stdout; any other output (a
    # print at import time) goes to the shared stderr.
    answer = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    from tickwork.cli.logging_setup import configure_logging
    from tickwork.cli.output import Output
    from tickwork.cli.settings import node_options
    from tickwork.cli.worker import import_task_modules, run_node, run_to_end
    from tickwork.engine.registry import REGISTRY
    from tickwork.engine.scheduler import Scheduler
    from tickwork.errors import TickworkError

    file = spec["file"]
    settings = Settings(
        values=spec["values"], sources=spec["sources"], file=None if file is None else Path(file)
    )
    configure_logging(settings["log_level"], settings["log_format"])
    import_task_modules(Output(), spec["imports"])
    scheduler = Scheduler(spec["db"], engine=True, registry=REGISTRY, **node_options(settings))

    def report_slow(since: float | None) -> None:
        with contextlib.suppress(OSError, ValueError):  # serve is gone: so are we, soon
            answer.write(json.dumps({"store_call_since": since}) + "\n")

    def announce(started: Scheduler) -> None:
        engine = started.engine
        if engine is not None:
            link.wake = engine.wake  # thread-safe
        answer.write(json.dumps({"node": started.node_id}) + "\n")
        if engine is not None:
            engine.store_watch.on_slow = report_slow
            if engine.store_watch.slow_since is not None:
                report_slow(engine.store_watch.slow_since)

    try:
        run_to_end(run_node(scheduler, settings, announce=announce, second_signal_exits=False))
    except TickworkError as exc:
        log.error("engine process: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    child_main()
