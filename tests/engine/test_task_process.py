"""Process-executor attempts never outlive themselves: their children are killed with
them, on timeout, on cancellation, and when the attempt is over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from tests.engine import output_tasks
from tickwork.engine.context import RunContext
from tickwork.engine.executors import Executors


def ctx_for(task: str, **data: object) -> RunContext:
    return RunContext(
        run_id=f"r-{task}",
        schedule_id=None,
        task=task,
        scheduled_for=datetime.now(UTC),
        attempt=1,
        trigger="manual",
        node="n",
        data=dict(data),
    )


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it runs no more)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pids_of(path: Path, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while not path.exists() or len(path.read_text().split()) < 2:
        assert time.monotonic() < deadline, "the task did not start its child"
        time.sleep(0.01)
    return [int(p) for p in path.read_text().split()]


def gone_soon(pids: list[int], within: float = 2.0) -> list[int]:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


@pytest.fixture
def cleanup() -> list[int]:
    """Pids to kill after the test whatever happened (a failing test leaves none)."""
    pids: list[int] = []
    yield pids  # type: ignore[misc]
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


async def test_a_timeout_kills_the_task_and_the_processes_it_started(
    tmp_path: Path, cleanup: list[int]
) -> None:
    ex = Executors()
    marker = tmp_path / "pids"
    task = output_tasks.registry.require("family_forever")
    try:
        # Long enough for the process to start its child even on a busy machine.
        result = await ex.run(task, ctx_for("family_forever", pids=str(marker)), 6)
    finally:
        ex.shutdown()
    pids = pids_of(marker, timeout=0)
    cleanup.extend(pids)
    assert result.status == "timed_out"
    assert "and its children killed" in (result.error or "")
    assert gone_soon(pids) == []


async def test_cancelling_kills_the_task_and_the_processes_it_started(
    tmp_path: Path, cleanup: list[int]
) -> None:
    ex = Executors()
    marker = tmp_path / "pids"
    task = output_tasks.registry.require("family_forever")
    attempt = asyncio.ensure_future(ex.run(task, ctx_for("family_forever", pids=str(marker)), 60))
    try:
        pids = await asyncio.get_running_loop().run_in_executor(None, pids_of, marker)
        cleanup.extend(pids)
        assert all(alive(p) for p in pids)
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
    finally:
        ex.shutdown()
    assert gone_soon(pids) == []


async def test_what_a_finished_attempt_left_running_is_killed(
    tmp_path: Path, cleanup: list[int]
) -> None:
    ex = Executors()
    marker = tmp_path / "pids"
    task = output_tasks.registry.require("family_leaves_child")
    try:
        result = await ex.run(task, ctx_for("family_leaves_child", pids=str(marker)), 30)
    finally:
        ex.shutdown()
    pids = pids_of(marker)
    cleanup.extend(pids)
    assert result.status == "succeeded" and result.result == "done"
    assert gone_soon(pids) == []


GUARDED = """
import multiprocessing.connection, os, subprocess, sys, time
from tickwork.engine.task_process import die_with_parent
die_with_parent(multiprocessing.connection.Connection(int(sys.argv[1]), writable=False),
                os.getppid())
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(os.getpid(), child.pid, flush=True)
time.sleep(120)
"""


def test_a_task_process_kills_its_group_when_the_pipe_to_its_node_closes(
    cleanup: list[int],
) -> None:
    """The watch that works on every system, alone (the node here stays alive, so the
    Linux parent-death signal is not what kills them)."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", GUARDED, str(read_end)],
        pass_fds=(read_end,),
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(read_end)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        cleanup.extend(pids)
        assert len(pids) == 2 and all(alive(p) for p in pids)
        os.close(write_end)
        write_end = -1
        assert proc.wait(5) == -9  # killed with its group
        assert gone_soon(pids) == []
    finally:
        if write_end >= 0:
            os.close(write_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_a_task_that_cannot_be_sent_to_a_process_fails_clearly() -> None:
    from tickwork import TaskRegistry, task

    local = TaskRegistry()

    @task("nested", registry=local, executor="process")
    def nested() -> None:  # defined in a function: a child process cannot import it
        return None

    ex = Executors()
    try:
        result = await ex.run(local.require("nested"), ctx_for("nested"), 30)
    finally:
        ex.shutdown()
    assert result.status == "failed"
    assert (result.error or "").startswith("cannot start the task's process: ")


#: As GUARDED, but as on a system without a parent-death signal (only the watch is left),
#: and the pipe stays open (its write end is held by the test as well as by the node).
WATCH_ONLY = GUARDED.replace(
    "from tickwork.engine.task_process import die_with_parent",
    "from tickwork.engine import task_process\n"
    "task_process._set_parent_death_signal = lambda sig: False\n"
    "from tickwork.engine.task_process import die_with_parent",
)

#: A node that starts a guarded task process (given as argv[2]) and then only sleeps.
NODE = """
import subprocess, sys, time
fd = int(sys.argv[1])
subprocess.Popen([sys.executable, "-c", sys.argv[2], str(fd)], pass_fds=(fd,))
time.sleep(120)
"""


def test_a_task_process_kills_its_group_when_its_node_dies_with_the_pipe_open(
    cleanup: list[int],
) -> None:
    """Without the Linux signal and with the pipe still open elsewhere, the task process
    notices its parent changed (the node died) and kills its group."""
    read_end, write_end = os.pipe()
    out_read, out_write = os.pipe()
    node = subprocess.Popen(
        [sys.executable, "-c", NODE, str(read_end), WATCH_ONLY],
        pass_fds=(read_end,),
        stdout=out_write,
    )
    os.close(read_end)
    os.close(out_write)
    try:
        with os.fdopen(out_read) as out:
            pids = [int(p) for p in out.readline().split()]
            cleanup.extend(pids)
            assert len(pids) == 2 and all(alive(p) for p in pids)
            node.kill()
            node.wait(5)
            # The watch looks at the parent's pid every PARENT_CHECK (1 s).
            assert gone_soon(pids, within=5.0) == []
    finally:
        os.close(write_end)
        if node.poll() is None:
            node.kill()
            node.wait(5)


#: Reports the parent-death signal the kernel will send (Linux prctl PR_GET_PDEATHSIG).
REPORTS_SIGNAL = GUARDED.replace(
    "print(os.getpid(), child.pid, flush=True)",
    "import ctypes\n"
    "sig = ctypes.c_int(0)\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)\n"
    "print(os.getpid(), child.pid, sig.value, flush=True)",
)


def test_the_parent_death_signal_is_set_and_kills_the_group(cleanup: list[int]) -> None:
    """On Linux the kernel sends the task process SIGTERM when its node dies; that
    signal kills the task process's whole group (the pipe here stays open)."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", REPORTS_SIGNAL, str(read_end)],
        pass_fds=(read_end,),
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(read_end)
    try:
        assert proc.stdout is not None
        pid, child, sig = (int(p) for p in proc.stdout.readline().split())
        cleanup.extend([pid, child])
        expected = signal.SIGTERM if sys.platform.startswith("linux") else 0
        assert sig == expected
        assert alive(pid) and alive(child)
        proc.send_signal(signal.SIGTERM)  # what the kernel sends when the node dies
        assert proc.wait(5) == -9  # killed with its group
        assert gone_soon([pid, child]) == []
    finally:
        os.close(write_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
