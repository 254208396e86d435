"""A task that forks: the child that returns from the task is ended where it leaves it.

``os.fork()`` in a task copies the whole node: in the child only the forking thread
runs, on the node's memory, connections and locks as they were. A child that does its
work and then calls ``os._exit()`` or ``exec`` is fine. One that returns from the task
(or raises out of it) went on as a copy of the node: a sync task's thread waited for
jobs that never came, for good, and so did the task's parent if it waited for its
child; an async task's event loop ran the node's work a second time, on the parent's
connections. The executors look, where an attempt leaves its task, whether they run in
a child forked during a run (``forked_run``), and if so end it (``leave``).

A process forked outside a run (a server that forks its workers after importing
tickwork) is no such child: only a fork made while a run's code executes counts.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

from tickwork.engine.context import current_capture, warn

log = logging.getLogger("tickwork.engine")

#: In a child forked by a task: the id of the run whose code forked ("?" if unknown);
#: None in every other process.
forked_run: str | None = None


def _after_fork_in_child() -> None:
    global forked_run
    capture = current_capture.get()
    if capture is not None:
        forked_run = capture.run_id or "?"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def leave(error: BaseException | None = None) -> NoReturn:
    """In a child a task forked, which has just left the task: say so, and exit at once
    (``os._exit``: the node's clean-up is the parent's). The code is 0 when the task
    returned, a ``SystemExit``'s code, else 1."""
    if error is None:
        error = sys.exc_info()[1]
    if error is None:
        code = 0
    elif isinstance(error, SystemExit) and isinstance(error.code, int):
        code = error.code
    else:
        code = 1
    try:
        said = (
            f"run {forked_run}: process {os.getpid()}, forked by the task, returned from "
            f"it; it exits (code {code}) instead of going on as a copy of the node: a "
            "forked child must end with os._exit() or exec"
        )
        warn(log, said)  # in a task's own process, on stderr
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(code)
