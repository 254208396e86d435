"""The pages that show: overview, schedules, one schedule, runs, one run, tasks, nodes,
audit, tokens. Each reads through the API's access rules (``tickwork.web.data`` and
``tickwork.api.access``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from tickwork.api import access, access_admin
from tickwork.api.auth import Caller
from tickwork.errors import NotFoundError, PermissionDeniedError
from tickwork.models import RUN_STATUSES, Schedule
from tickwork.web import data
from tickwork.web.address import DashboardRoute
from tickwork.web.live import run_state
from tickwork.web.render import SECURITY_HEADERS, live_redirect, render
from tickwork.web.session import Preferences, preferences
from tickwork.web.signin import current_caller, scheduler_of, to_sign_in
from tickwork.web.timefmt import dst_notes

router = APIRouter(route_class=DashboardRoute)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: What cancelling a run does, said in the question asked first.
CANCEL_EFFECT: Final = (
    "A waiting run never starts; a running one is stopped (an async task is cancelled,"
    " a task in its own process is killed) and is not retried."
)


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return min(max(int(value or default), lo), hi)
    except ValueError:
        return default


def _day(value: str | None, zone: str, end: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD) or date-time typed in a filter, read in ``zone``."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    if end and len(value) <= 10:
        parsed += timedelta(days=1)
    return parsed.astimezone(UTC)


def filter_zone(prefs: Preferences) -> str:
    """The zone a day typed in the runs' filter is read in: the browser's when times are
    shown in it, else UTC (runs of many schedules have no one zone of their own)."""
    if prefs.time_mode == "browser" and prefs.browser_zone:
        try:
            ZoneInfo(prefs.browser_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return "UTC"
        return prefs.browser_zone
    return "UTC"


def run_cursor(value: str | None) -> tuple[datetime, str] | None:
    """The runs page's "older" link: the last run's (scheduled_for, id)."""
    if not value or "|" not in value:
        return None
    at, _, run_id = value.partition("|")
    try:
        return datetime.fromisoformat(at), run_id
    except ValueError:
        return None


def not_found(request: Request, caller: Caller, what: str) -> Response:
    return render(
        request, "error.html", caller, status_code=404, title="Not found", message=f"No {what}."
    )


@router.get("/", include_in_schema=False)
async def overview(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    scheduler = scheduler_of(request)
    now = datetime.now(UTC)
    view = await data.overview(scheduler, caller, now)
    nodes = await access.nodes(scheduler, caller)
    return render(
        request,
        "overview.html",
        caller,
        charts=True,
        title="Overview",
        nav="Overview",
        live_url="/ui/events",
        view=view,
        nodes=nodes,
        zones=await data.run_zones(scheduler, caller, view.failures),
    )


@router.get("/schedules", include_in_schema=False)
async def schedules(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    scheduler = scheduler_of(request)
    p = request.query_params
    per_page = _int(p.get("per_page"), 50, 10, 200)
    sort = p.get("sort", "name")
    listing = await data.schedules(
        scheduler,
        caller,
        q=p.get("q", "").strip(),
        status=p.get("status") or None,
        task=p.get("task") or None,
        tag=p.get("tag") or None,
        sort=sort,
        descending=p.get("dir") == "desc",
        page=_int(p.get("page"), 1, 1, 10**9),
        per_page=per_page,
    )
    strips = await data.last_runs(scheduler, caller, [s.id for s in listing.items])
    descriptions = {s.id: data.describe(s) for s in listing.items}
    return render(
        request,
        "schedules.html",
        caller,
        title="Schedules",
        nav="Schedules",
        live_url="/ui/events",
        listing=listing,
        strips=strips,
        descriptions=descriptions,
        tasks=await data.task_names(scheduler, caller),
        f={k: p.get(k, "") for k in ("q", "status", "task", "tag", "sort", "dir")},
        per_page=per_page,
    )


@router.get("/schedules/{schedule_id}", include_in_schema=False)
async def schedule_page(request: Request, schedule_id: str) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    s = await data.schedule_or_none(scheduler_of(request), caller, schedule_id)
    if s is None:
        if request.headers.get("hx-request") == "true":
            # The open page's live refresh: deleted meanwhile (here or anywhere), the
            # page goes to the list and says so, rather than go on showing it.
            return live_redirect(
                "/schedules", f"Schedule {schedule_id} no longer exists: it was deleted.", "error"
            )
        return not_found(request, caller, f"schedule {schedule_id!r}")
    return await render_schedule(request, caller, s)


async def render_schedule(
    request: Request,
    caller: Caller,
    s: Schedule,
    *,
    status_code: int = 200,
    run_form: dict[str, str] | None = None,
    backfill_form: dict[str, str] | None = None,
) -> Response:
    """A schedule's page; a refused Run now or Backfill comes back on it with its panel
    open, what was typed in it, and why it was refused."""
    scheduler = scheduler_of(request)
    p = request.query_params
    status = p.get("status") or None
    since = _day(p.get("since"), s.timezone)
    until = _day(p.get("until"), s.timezone, end=True)
    runs = await access.list_runs(
        scheduler,
        caller,
        schedule_id=s.id,
        status=status if status in RUN_STATUSES else None,
        since=since,
        until=until,
        before=run_cursor(p.get("before")),
        limit=51,
    )
    more = len(runs) > 50
    runs = runs[:50]
    fires = dst_notes(await access.next_fire_times(scheduler, caller, s.id, 10), s.timezone)
    history = await data.history(scheduler, caller, s.id)
    return render(
        request,
        "schedule.html",
        caller,
        status_code=status_code,
        title=s.name or s.id,
        nav="Schedules",
        live_url=f"/ui/events?schedule={s.id}",
        s=s,
        description=data.describe(s),
        runs=runs,
        more=more,
        fires=fires,
        history=history,
        pause_reason=data.pause_reason(history) if s.paused else None,
        statuses=RUN_STATUSES,
        f={k: p.get(k, "") for k in ("status", "since", "until")},
        run_form=run_form,
        backfill_form=backfill_form,
    )


@router.get("/runs", include_in_schema=False)
async def runs_page(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    scheduler = scheduler_of(request)
    p = request.query_params
    status = p.get("status") or None
    days_zone = filter_zone(preferences(request, caller.user))
    runs = await access.list_runs(
        scheduler,
        caller,
        status=status if status in RUN_STATUSES else None,
        task=p.get("task") or None,
        since=_day(p.get("since"), days_zone),
        until=_day(p.get("until"), days_zone, end=True),
        before=run_cursor(p.get("before")),
        limit=51,
    )
    return render(
        request,
        "runs.html",
        caller,
        title="Runs",
        nav="Runs",
        live_url="/ui/events",
        runs=runs[:50],
        zones=await data.run_zones(scheduler, caller, runs[:50]),
        more=len(runs) > 50,
        statuses=RUN_STATUSES,
        tasks=await data.task_names(scheduler, caller),
        days_zone=days_zone,
        f={k: p.get(k, "") for k in ("status", "task", "since", "until")},
    )


@router.get("/runs/{run_id}", include_in_schema=False)
async def run_page(request: Request, run_id: str) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    scheduler = scheduler_of(request)
    try:
        run = await access.get_run(scheduler, caller, run_id)
    except NotFoundError:
        return not_found(request, caller, f"run {run_id!r}")
    p = request.query_params
    level = p.get("level", "")
    q = p.get("q", "").strip()
    logs = data.filter_logs(run.logs, level, q)
    zone = None
    if run.schedule_id:
        s = await data.schedule_or_none(scheduler, caller, run.schedule_id)
        zone = s.timezone if s else None
    return render(
        request,
        "run.html",
        caller,
        title=f"Run {run.id}",
        nav="Runs",
        live_url=(
            f"/ui/events?run={quote(run.id)}&state={quote(run_state(run))}"
            if not run.done
            else None
        ),
        run=run,
        zone=zone,
        logs=logs,
        levels=LOG_LEVELS,
        cancel_effect=CANCEL_EFFECT,
        f={"level": level, "q": q},
    )


@router.get("/runs/{run_id}/logs.txt", include_in_schema=False)
async def run_logs(request: Request, run_id: str) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    try:
        run = await access.get_run(scheduler_of(request), caller, run_id)
    except NotFoundError:
        return PlainTextResponse("no such run\n", status_code=404)
    p = request.query_params
    lines = [
        f"{r.at.astimezone(UTC).isoformat()} {r.level} {r.logger} [attempt {r.attempt}] {r.message}"
        for r in data.filter_logs(run.logs, p.get("level", ""), p.get("q", "").strip())
    ]
    return PlainTextResponse(
        "\n".join(lines) + ("\n" if lines else ""),
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="run-{run.id}-logs.txt"',
        },
    )


@router.get("/tasks", include_in_schema=False)
async def tasks_page(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    tasks = await access.list_tasks(scheduler_of(request), caller)
    return render(request, "tasks.html", caller, title="Tasks", nav="Tasks", tasks=tasks)


@router.get("/nodes", include_in_schema=False)
async def nodes_page(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    nodes = await access.nodes(scheduler_of(request), caller)
    return render(
        request,
        "nodes.html",
        caller,
        title="Nodes",
        nav="Nodes",
        nodes=nodes,
        live_url="/ui/events",
    )


@router.get("/audit", include_in_schema=False)
async def audit_page(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    p = request.query_params
    try:
        entries = await access_admin.audit_log(
            scheduler_of(request),
            caller,
            actor=p.get("actor") or None,
            target=p.get("target") or None,
            before_id=_int(p.get("before"), 0, 0, 2**62) or None,
            limit=51,
        )
    except PermissionDeniedError as e:
        return render(
            request, "error.html", caller, status_code=403, title="Refused", message=str(e)
        )
    return render(
        request,
        "audit.html",
        caller,
        title="Audit log",
        nav="Audit",
        entries=entries[:50],
        more=len(entries) > 50,
        f={k: p.get(k, "") for k in ("actor", "target")},
    )


@router.get("/tokens", include_in_schema=False)
async def tokens_page(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    try:
        tokens = await access_admin.list_tokens(scheduler_of(request), caller)
    except PermissionDeniedError as e:
        return render(
            request, "error.html", caller, status_code=403, title="Refused", message=str(e)
        )
    return render(
        request,
        "tokens.html",
        caller,
        title="Tokens",
        nav="Tokens",
        tokens=tokens,
        secret=None,
        typed={},
        errors={},
    )


class BrowserPageRoute(DashboardRoute):
    """Matches only a browser's request for a page (``Accept: text/html``) outside the
    REST API: every other client keeps the API's JSON 404 and 405."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("type") != "http" or scope.get("path", "").startswith("/api/"):
            return Match.NONE, {}
        accept = dict(scope.get("headers", ())).get(b"accept", b"")
        if b"text/html" not in accept:
            return Match.NONE, {}
        return super().matches(scope)


async def no_such_page(request: Request, address: str) -> Response:
    """A dashboard address with no page (mistyped, or a form's address, which takes only
    its post): the dashboard's own 404 page rather than the API's JSON."""
    caller = await current_caller(request)
    return render(
        request,
        "error.html",
        caller,
        status_code=404,
        title="No such page",
        message=f"There is no page at {request.url.path}.",
    )


# Last of all the dashboard's routes: only what nothing else matched comes here.
router.add_api_route(
    "/{address:path}",
    no_such_page,
    methods=["GET", "HEAD"],
    include_in_schema=False,
    route_class_override=BrowserPageRoute,
)
