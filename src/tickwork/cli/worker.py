"""``tickwork worker``: run a node (the engine, no API) until SIGTERM or SIGINT.

On the first signal the node stops claiming, lets running runs finish for
``--shutdown-grace`` seconds, cancels what is still running (the run is left for the
next node), deregisters and exits 0. Waiting runs stay in the database for the next
node or start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, Final

import typer

from tickwork.cli.client import globals_of
from tickwork.cli.logging_setup import configure_logging
from tickwork.cli.main import DEFAULT_DB, app
from tickwork.cli.output import Output
from tickwork.cli.settings import (
    NODE_SETTINGS,
    SettingError,
    Settings,
    node_options,
    settings_command,
)
from tickwork.engine.registry import REGISTRY
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import TickworkError
from tickwork.store.url import mask_password

log = logging.getLogger("tickwork.worker")

#: Seconds the tasks still running once the node stopped get to end after one more
#: cancellation, before the process leaves them (``run_to_end``).
LEFT_WAIT: Final = 1.0


def import_task_modules(out: Output, modules: list[str]) -> None:
    """Import each module (its ``@task`` functions register themselves).

    The current directory comes first on ``sys.path``, so ``--import examples.tasks``
    works from a project's root as it would in ``python -c``.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            _refuse_a_path(out, name, cwd)
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                out.fail(f"cannot import {name!r}: no such module (looked in {cwd} and sys.path)")
            out.fail(f"cannot import {name!r}: {exc}")
        except TickworkError as exc:
            out.fail(f"cannot import {name!r}: {exc}")
        except Exception as exc:
            _refuse_a_path(out, name, cwd)  # "" and "./x" fail with ValueError, TypeError
            detail = "".join(traceback.format_exception(exc)).rstrip()
            out.fail(f"cannot import {name!r}: {type(exc).__name__}: {exc}\n{detail}")


def _refuse_a_path(out: Output, name: str, cwd: str) -> None:
    """Fail, saying what to give instead, when ``name`` (which could not be imported)
    is no module's dotted name: an empty one, or a file's path."""
    problem = _not_a_module_name(name, cwd)
    if problem is not None:
        out.fail(f"cannot import {name!r}: {problem}")


def _not_a_module_name(name: str, cwd: str) -> str | None:
    """Why ``name`` is not a module's dotted name (None when it is); for a file's path,
    the name to give instead."""
    if all(part.isidentifier() for part in name.split(".")):
        return None
    if not name.strip():
        return "give a module's name, such as examples.tasks"
    path = os.path.normpath(os.path.join(cwd, name))
    if name.endswith(".py") or os.sep in name or "/" in name:
        stem, directory = os.path.splitext(path)[0], os.path.dirname(path)
        relative = os.path.relpath(stem, cwd)
        dotted = relative.replace(os.sep, ".")
        if not relative.startswith("..") and all(p.isidentifier() for p in dotted.split(".")):
            return f"give the module's name, not a file's path: --import {dotted}"
        return (
            "give the module's name, not a file's path: put its directory "
            f"({directory}) on PYTHONPATH and --import {os.path.basename(stem)}"
        )
    return "not a module's name (dotted names, as for 'python -m', such as examples.tasks)"


async def run_node(
    scheduler: Scheduler,
    settings: Settings,
    *,
    announce: Callable[[Scheduler], None] | None = None,
    second_signal_exits: bool = True,
) -> None:
    """Run ``scheduler``'s node until SIGTERM or SIGINT, then stop it gracefully.

    ``announce`` is called once the node runs (default: the worker's banner). With
    ``second_signal_exits`` false, a repeated signal changes nothing (``serve``'s engine
    process: its parent and a process manager may both signal it, and leaving at once is
    the parent's decision).
    """
    grace: float = settings["shutdown_grace"]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        if len(received) > 1 and not second_signal_exits:
            return  # already stopping
        if len(received) == 1:
            log.info(
                "%s: stopping; running runs get up to %g s to finish "
                "(signal again to exit at once)",
                sig.name,
                grace,
            )
            stop.set()
            return
        # A second signal: the person wants out now. Runs still running are taken
        # over by the next node (a dead process on this host is noticed at once).
        log.warning("%s again: exiting now; running runs will be retried", sig.name)
        logging.shutdown()
        os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            await scheduler.start()
        except BaseException:
            await scheduler.stop(0)
            raise
        if announce is not None:
            announce(scheduler)
        else:
            _banner(scheduler, settings)
        await stop.wait()
        await scheduler.stop(grace)
        log.info("node %s stopped", scheduler.node_id)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run_to_end(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``, except that tasks still running once ``main`` returned do
    not keep the process: ``asyncio.run`` waits for every task to end after cancelling
    it, and an async task given up by the node (it ignores its cancellation, see
    ``EngineConfig.stop_grace``) never does. Each gets ``LEFT_WAIT`` seconds more, then
    the process exits (0 when the node stopped as asked, else 1) without finalizing
    them, which would run their code again outside the loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stopped = False
    try:
        loop.run_until_complete(main)
        stopped = True
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                _done, pending = loop.run_until_complete(asyncio.wait(left, timeout=LEFT_WAIT))
                if pending:
                    log.warning(
                        "exiting with %d async task(s) still running: they ignore their "
                        "cancellation",
                        len(pending),
                    )
                    logging.shutdown()
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(0 if stopped else 1)  # 1: main failed (its error was not
                    # raised: the process leaves here)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _banner(scheduler: Scheduler, settings: Settings) -> None:
    """The worker's first lines: its node, database, tasks and settings."""
    tasks = sorted(scheduler.registry.names())
    print(
        f"tickwork worker: node {scheduler.node_id}, db {scheduler.store.url}, "
        f"{len(tasks)} task(s): {', '.join(tasks) or 'none'}"
        + (f"; settings from {settings.file}" if settings.file else ""),
        flush=True,
    )
    print(f"settings: {settings.summary()}", flush=True)
    if not tasks:
        log.warning(
            "no task is registered in this worker, so it fires schedules but runs "
            "nothing: pass --import MODULE"
        )


#: ``--import MODULE``, shared by every command that runs a node (``worker``, ``serve``).
IMPORT_OPTION = typer.Option(
    None,
    "--import",
    "-i",
    metavar="MODULE",
    help="A module whose @task functions register themselves (repeatable); the "
    "current directory is on the import path.",
)


@app.command(
    "worker",
    help="Run a node: fire schedules and execute the tasks of the --import'ed modules, "
    "until SIGTERM or Ctrl-C (running runs get --shutdown-grace seconds to finish). "
    "Each setting below also comes from the environment (TICKWORK_<NAME>) or the "
    "settings file (--config, or ./tickwork.toml): a flag beats the environment, which "
    "beats the file.",
)
@settings_command(NODE_SETTINGS)
def worker(
    ctx: typer.Context,
    imports: list[str] | None = IMPORT_OPTION,
    *,
    settings: Settings,
) -> None:
    g = globals_of(ctx)
    g.require_db()
    out = g.out
    try:
        db = settings.database(g.db_given, DEFAULT_DB)
    except SettingError as exc:
        out.fail(str(exc))
    configure_logging(settings["log_level"], settings["log_format"])
    import_task_modules(out, imports or [])
    try:
        scheduler = Scheduler(db, engine=True, registry=REGISTRY, **node_options(settings))
        run_to_end(run_node(scheduler, settings))
    except TickworkError as exc:
        out.fail(f"{exc} (database {mask_password(db)})")
