"""``tickwork serve``: the engine and the REST API (and dashboard), one command.

It is a node exactly like ``tickwork worker`` plus an HTTP server (uvicorn) on
127.0.0.1:8000 by default. The node runs in a child process that ``serve`` starts,
supervises and stops (``serve_engine``), so requests never hold the interpreter a fire
waits for; the API uses the database as a client. On the first SIGTERM/SIGINT it stops
accepting connections, lets requests in flight finish (up to ``--shutdown-grace``
seconds) while the engine stops as the worker does (running runs get the grace
period), and exits 0; a second signal exits at once (the engine process with it).

When no API token exists and ``TICKWORK_ADMIN_TOKEN`` is unset, the first start makes
an admin token and prints it once, with the dashboard's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import typer

from tickwork.api.settings import DEFAULT_MAX_BODY, DEFAULT_RATE_LIMIT, ApiSettings
from tickwork.cli.client import globals_of
from tickwork.cli.logging_setup import configure_logging
from tickwork.cli.main import DEFAULT_DB, app
from tickwork.cli.output import Output
from tickwork.cli.serve_engine import EngineStartError, EngineSupervisor
from tickwork.cli.settings import (
    NODE_SETTINGS,
    Setting,
    Settings,
    declare,
    node_options,
    settings_command,
)
from tickwork.cli.worker import IMPORT_OPTION, import_task_modules
from tickwork.engine.audit import acting_as
from tickwork.engine.registry import REGISTRY
from tickwork.engine.scheduler import Scheduler
from tickwork.errors import TickworkError
from tickwork.store.url import mask_password

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("tickwork.serve")


#: Proxies believed by default: one on this host, as the deployment guide's nginx.
DEFAULT_TRUSTED_PROXIES: Final = "127.0.0.1,::1"


def check_trusted_proxies(value: str) -> None:
    """Refuse what is not an address, a network or ``*`` alone: the HTTP server takes an
    entry it cannot read for a name no client has, so a typo would silently believe no
    proxy (every client one address, the proxy's)."""
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if "*" in entries:
        if len(entries) > 1:
            raise ValueError("'*' (any proxy) stands alone, not beside addresses")
        return
    for entry in entries:
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError as exc:
            raise ValueError(
                f"{entry!r} is not an IP address, a network (10.0.0.0/8) or '*' ({exc})"
            ) from None


def check_cors_origins(value: str) -> None:
    """Refuse an origin no browser sends: CORS compares the ``Origin`` header exactly,
    so an entry without its scheme, with a path or a trailing slash, or in capitals would
    match no request, and the site it names would silently get no CORS headers."""
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if "*" in entries:
        if len(entries) > 1:
            raise ValueError("'*' (any origin) stands alone, not beside origins")
        return
    for entry in entries:
        scheme, sep, rest = entry.partition("://")
        if not sep or scheme not in ("http", "https"):
            problem = "no scheme: write it as https://host[:port]"
        elif not rest or any(c in rest for c in "/?#@ "):
            problem = "an origin is https://host[:port], with no path (nor a trailing slash)"
        elif entry != entry.lower():
            problem = "a browser sends its origin in lowercase"
        else:
            continue
        raise ValueError(f"{entry!r} is no origin a browser sends ({problem})")


#: The settings of ``serve``: a node's, where to listen, and the API's limits. Secrets
#: (``TICKWORK_ADMIN_TOKEN``, ``TICKWORK_JWT_SECRET``, ``TICKWORK_JWT_PUBLIC_KEY``) come
#: from the environment only, so they are never in a file nor in the settings summary.
SERVE_SETTINGS: Final = (
    *NODE_SETTINGS,
    *declare(
        Setting("host", "str", "127.0.0.1", "Address to listen on.", metavar="HOST"),
        Setting(
            "port", "int", 8000, "Port to listen on (0: any free one).", minimum=0, maximum=65535
        ),
        Setting(
            "rate_limit",
            "int",
            DEFAULT_RATE_LIMIT,
            "Requests a minute per token (or per client without one); over it: 429 (0: no limit).",
            minimum=0,
        ),
        Setting(
            "max_body",
            "int",
            DEFAULT_MAX_BODY,
            "Largest request body in bytes; larger: 413.",
            minimum=1,
            metavar="BYTES",
        ),
        Setting(
            "cors_origins",
            "str",
            "",
            "Origins allowed to call the API from a browser, comma-separated, each as a "
            "browser sends it (https://host[:port]; '*': any; none: no CORS).",
            metavar="ORIGINS",
            check=check_cors_origins,
        ),
        Setting(
            "jwt_issuer", "str", "", "The issuer ('iss') JWTs must have, when set.", metavar="ISS"
        ),
        Setting(
            "jwt_audience",
            "str",
            "",
            "The audience ('aud') JWTs must have, when set.",
            metavar="AUD",
        ),
        Setting(
            "access_log",
            "bool",
            True,
            "One line per HTTP request in the log, at INFO (off: a proxy in front logs them).",
        ),
        Setting(
            "trusted_proxies",
            "str",
            DEFAULT_TRUSTED_PROXIES,
            "Addresses or networks of the proxies in front, comma-separated ('*': any), "
            "whose X-Forwarded-For and X-Forwarded-Proto are believed: the client's "
            "address (rate limit, access log) is then the one they forwarded.",
            metavar="ADDRESSES",
            check=check_trusted_proxies,
        ),
        Setting(
            "api_nice",
            "int",
            0,
            "Linux: niceness the HTTP server adds to itself (0-19), so that under load the "
            "engine process's fires get the CPU before requests; the engine keeps its own.",
            minimum=0,
            maximum=19,
            metavar="N",
        ),
    ),
)


@dataclass(frozen=True)
class ServeOptions:
    """What ``_serve`` needs besides the scheduler."""

    host: str
    port: int
    shutdown_grace: float
    log_level: str
    access_log: bool = True
    api_nice: int = 0
    trusted_proxies: str = DEFAULT_TRUSTED_PROXIES
    api: ApiSettings = field(default_factory=ApiSettings)
    #: The settings and where each came from, printed at start (no secret in it).
    summary: str = ""


def api_settings(settings: Settings, environ: Mapping[str, str]) -> ApiSettings:
    """The API's settings: secrets from the environment, the rest from ``settings``."""
    secrets = ApiSettings.from_env({k: v for k, v in environ.items() if k in _SECRET_ENV})
    origins = tuple(o.strip() for o in settings["cors_origins"].split(",") if o.strip())
    return dataclasses.replace(
        secrets,
        rate_limit=settings["rate_limit"],
        max_body=settings["max_body"],
        cors_origins=origins,
        jwt_issuer=settings["jwt_issuer"] or None,
        jwt_audience=settings["jwt_audience"] or None,
    )


_SECRET_ENV: Final = frozenset(
    {"TICKWORK_ADMIN_TOKEN", "TICKWORK_JWT_SECRET", "TICKWORK_JWT_PUBLIC_KEY"}
)


class ApiScheduler(Scheduler):
    """The API's facade: a change made through it also wakes serve's engine process
    directly, as it would wake an engine of its own process."""

    def __init__(self, process: EngineSupervisor, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engine_process = process

    def _changed(self, due_at: datetime | None = None) -> None:
        super()._changed(due_at)
        self._engine_process.wake(due_at)


def _server_class() -> type[uvicorn.Server]:
    """uvicorn without its own signal handling: ``serve`` decides what a signal does
    (uvicorn's would re-raise the signal once it has stopped, killing the process
    before the engine has stopped). Imported here, not with the module: the web stack
    takes seconds to import, and every other command (an emergency ``pause``) must not
    wait for it."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return _Server


def _http_protocol() -> str:
    """httptools (C) when installed: it parses a request in a fraction of h11's time."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (not on Windows): a request's turns of the loop
    cost less."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def lower_priority(nice: int) -> None:
    """Add ``nice`` to the niceness of this thread, the loop's, and so of every thread
    it starts from now on (Linux keeps a niceness per thread). The engine process is
    started from a thread made before (``EngineSupervisor``), so it keeps serve's first
    priority: under load the scheduler gives the engine's fires the cores first."""
    if nice <= 0:
        return
    if not sys.platform.startswith("linux"):
        log.warning("api_nice is only applied on Linux (elsewhere the engine would get it too)")
        return
    os.nice(nice)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def _listen(server: uvicorn.Server) -> None:
    """``server.serve()``, returning when it cannot listen: uvicorn then logs the reason
    and raises ``SystemExit``, which would escape the event loop and leave the engine
    process running (``_serve`` reports it and stops the engine)."""
    with contextlib.suppress(SystemExit):
        await server.serve()


async def _first_admin_token(scheduler: Scheduler, options: ServeOptions) -> str | None:
    """A new admin token's secret when nobody could sign in otherwise (no token exists
    and ``TICKWORK_ADMIN_TOKEN`` is unset); None otherwise."""
    if options.api.admin_token is not None:
        return None
    with acting_as("serve"):
        made = await scheduler.create_token("admin", admin=True, only_if_none=True)
    return None if made is None else made[1]


async def _serve(
    scheduler: Scheduler, engine: EngineSupervisor, options: ServeOptions, out: Output
) -> None:
    loop = asyncio.get_running_loop()
    received: list[str] = []
    server: uvicorn.Server | None = None
    stopping = asyncio.Event()
    engine_stop: asyncio.Future[None] | None = None

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        if len(received) == 1:
            log.info(
                "%s: stopping; requests and running runs get up to %g s to finish "
                "(signal again to exit at once)",
                sig.name,
                options.shutdown_grace,
            )
            stopping.set()
            if server is not None:
                server.should_exit = True
            nonlocal engine_stop
            engine_stop = asyncio.ensure_future(engine.stop())  # both drain at once
            return
        log.warning("%s again: exiting now; running runs will be retried", sig.name)
        logging.shutdown()
        os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    lower_priority(options.api_nice)
    try:
        try:
            await scheduler.start()  # migrates the database before the engine opens it
            await engine.launch()
            # The web stack imports while the engine process starts its node.
            import uvicorn

            from tickwork.api import heap
            from tickwork.api.app import create_app
            from tickwork.api.live import start_live, stop_live

            node = await engine.ready()
        except EngineStartError as exc:
            await engine.stop(0)
            await scheduler.stop(0)
            if received:
                return  # stopped while starting: the engine ended as it was asked to
            out.fail(str(exc))
        except BaseException:
            await engine.stop(0)
            await scheduler.stop(0)
            raise
        api = create_app(scheduler, options.api)
        api.state.stopping = stopping  # long-lived responses (events) end when set
        api.state.engine_process = engine  # for /health and /metrics
        await start_live(api)  # follow the event feed from now on (events, metrics)
        config = uvicorn.Config(
            api,
            host=options.host,
            port=options.port,
            log_level=options.log_level,
            # No handlers of uvicorn's own: its records (start, requests, stop) reach
            # the root logger's, in the node's format (--log-format json: every line
            # on stderr is JSON, as collectors need).
            log_config=None,
            access_log=options.access_log,
            # Said here, not left to uvicorn's FORWARDED_ALLOW_IPS: one setting, named
            # and checked as tickwork's others.
            proxy_headers=True,
            forwarded_allow_ips=[
                e.strip() for e in options.trusted_proxies.split(",") if e.strip()
            ],
            lifespan="off",
            http=_http_protocol(),
            timeout_graceful_shutdown=math.ceil(options.shutdown_grace),
            server_header=False,
        )
        server = _server_class()(config)
        if stopping.is_set():
            server.should_exit = True
        heap.settle()  # the app's objects out of the collector's walks (api/heap.py)
        serving = asyncio.create_task(_listen(server))
        # uvicorn exposes a flag, not an event, for "listening".
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if server.started:
            port = options.port
            for s in server.servers:
                for sock in s.sockets:
                    port = sock.getsockname()[1]
            tasks = sorted(scheduler.registry.names())
            url = _url(options.host, port)
            print(
                f"tickwork serve: {url} (API {url}api/v1, docs {url}docs); node "
                f"{node} (engine process {engine.pid}), db {scheduler.store.url}, "
                f"{len(tasks)} task(s): {', '.join(tasks) or 'none'}",
                flush=True,
            )
            if options.summary:
                print(f"settings: {options.summary}", flush=True)
            # Made once the server listens: a start that fails before it would make
            # the only admin token and never show it.
            first_token = await _first_admin_token(scheduler, options)
            if first_token is not None:
                print(
                    "\nNo API token existed, so this admin token was made. It is shown this "
                    f"once; keep it:\n\n    {first_token}\n\nDashboard: {url} (sign in with "
                    "the token). More tokens: tickwork token create --user NAME\n",
                    flush=True,
                )
        try:
            await serving
        finally:
            heap.release()
            await stop_live(api)
            if engine_stop is None:
                engine_stop = asyncio.ensure_future(engine.stop())
            await engine_stop
            await scheduler.stop(options.shutdown_grace)
        if not server.started and not received:
            out.fail(
                f"could not listen on {options.host}:{options.port} (the reason is in the log "
                "above): give another --port or --host (TICKWORK_PORT, TICKWORK_HOST), or stop "
                "what listens there"
            )
        log.info("node %s stopped", engine.node_id)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@app.command(
    "serve",
    help="Run a node with the REST API and the dashboard (the engine in a child process "
    "that serve supervises) "
    "until SIGTERM or Ctrl-C. Each setting below also comes from the environment "
    "(TICKWORK_<NAME>) or the settings file (--config, or ./tickwork.toml); credentials "
    "come from the environment only: TICKWORK_ADMIN_TOKEN, TICKWORK_JWT_SECRET, "
    "TICKWORK_JWT_PUBLIC_KEY.",
)
@settings_command(SERVE_SETTINGS)
def serve(
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
        options = ServeOptions(
            host=settings["host"],
            port=settings["port"],
            shutdown_grace=settings["shutdown_grace"],
            log_level=settings["log_level"],
            access_log=settings["access_log"],
            api_nice=settings["api_nice"],
            trusted_proxies=settings["trusted_proxies"],
            api=api_settings(settings, os.environ),
            summary=settings.summary(),
        )
    except TickworkError as exc:
        out.fail(str(exc))
    configure_logging(settings["log_level"], settings["log_format"])
    import_task_modules(out, imports or [])
    try:
        # The API's facade: the settings give the defaults it shows on new schedules.
        engine = EngineSupervisor(db, imports or [], settings)
        scheduler = ApiScheduler(
            engine, db, engine=False, registry=REGISTRY, **node_options(settings)
        )
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(scheduler, engine, options, out))
    except TickworkError as exc:
        out.fail(f"{exc} (database {mask_password(db)})")
