"""The dashboard's writes: create and edit a schedule, pause, resume, run now, backfill,
delete, the bulk actions of the list, and cancel a run (tokens: ``tickwork.web.tokens``).
Every post passes the session's CSRF check and goes through the API's access rules, so
a read-only caller is refused here even if a control were shown."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tickwork.api import access
from tickwork.api.auth import Caller
from tickwork.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TickworkError,
    ValidationError,
)
from tickwork.models import TaskSpec
from tickwork.schedule import ScheduleError, parse_schedule
from tickwork.validation import parse_instant
from tickwork.web import data, pages
from tickwork.web.address import DashboardRoute
from tickwork.web.forms import (
    FIELDS_WITH_ERRORS,
    POLICY_DEFAULTS,
    form_field,
    form_values,
    json_text,
    read_form,
)
from tickwork.web.render import fragment, redirect, render
from tickwork.web.signin import current_caller, scheduler_of, to_sign_in, writer
from tickwork.web.timefmt import format_instant, zone

router = APIRouter(route_class=DashboardRoute)
BULK_ACTIONS = {
    "pause": "Paused",
    "resume": "Resumed",
    "run": "Started a run of",
    "delete": "Deleted",
}


async def posted_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def refused(request: Request, caller: Caller, e: TickworkError) -> Response:
    status = (
        403
        if isinstance(e, PermissionDeniedError)
        else 404
        if isinstance(e, NotFoundError)
        else 400
    )
    return render(
        request, "error.html", caller, status_code=status, title="Refused", message=str(e)
    )


# -- the form ---------------------------------------------------------------------------


async def form_page(
    request: Request,
    caller: Caller,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    editing: str | None,
    status_code: int = 200,
    tasks: list[TaskSpec] | None = None,
) -> Response:
    if tasks is None:
        tasks = await access.list_tasks(scheduler_of(request), caller)
    return render(
        request,
        "form.html",
        caller,
        status_code=status_code,
        title=f"Edit {editing}" if editing else "New schedule",
        nav="Schedules",
        v=values,
        errors=errors,
        shown_fields=FIELDS_WITH_ERRORS,
        editing=editing,
        tasks=tasks,
        defaults=POLICY_DEFAULTS,
        zones=data.zone_names(),
        preview=validation_preview(
            values.get("schedule", ""), values.get("timezone", "UTC"), values.get("start_at", "")
        ),
    )


@router.get("/schedules/new", include_in_schema=False)
async def new_schedule(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    values = form_values(None)
    values["task"] = request.query_params.get("task", "")
    return await form_page(request, caller, values=values, errors={}, editing=None)


@router.post("/schedules/new", include_in_schema=False)
async def create_schedule(request: Request) -> Response:
    posted = await posted_form(request)
    caller = await writer(request, posted.get("csrf"))
    if not isinstance(caller, Caller):
        return caller
    tasks = await access.list_tasks(scheduler_of(request), caller)
    form = read_form(posted, creating=True, tasks=tasks)
    if form.ok:
        fields = dict(form.fields)
        try:
            created = await access.create_schedule(scheduler_of(request), caller, fields)
        except (ValidationError, ScheduleError) as e:
            form.errors[form_field(e.field)] = str(e)
        except TickworkError as e:
            form.errors["_"] = str(e)
        else:
            return redirect(f"/schedules/{quote(created.id, safe='')}", "Schedule created.")
    return await form_page(
        request,
        caller,
        values=form.values,
        errors=form.errors,
        editing=None,
        status_code=400,
        tasks=tasks,
    )


@router.get("/schedules/{schedule_id}/edit", include_in_schema=False)
async def edit_schedule(request: Request, schedule_id: str) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    s = await data.schedule_or_none(scheduler_of(request), caller, schedule_id)
    if s is None:
        return render(
            request,
            "error.html",
            caller,
            status_code=404,
            title="Not found",
            message=f"No schedule {schedule_id!r}.",
        )
    return await form_page(request, caller, values=form_values(s), errors={}, editing=s.id)


@router.post("/schedules/{schedule_id}/edit", include_in_schema=False)
async def save_schedule(request: Request, schedule_id: str) -> Response:
    posted = await posted_form(request)
    caller = await writer(request, posted.get("csrf"))
    if not isinstance(caller, Caller):
        return caller
    scheduler = scheduler_of(request)
    current = await data.schedule_or_none(scheduler, caller, schedule_id)
    if current is None:
        return render(
            request,
            "error.html",
            caller,
            status_code=404,
            title="Not found",
            message=f"No schedule {schedule_id!r}.",
        )
    tasks = await access.list_tasks(scheduler, caller)
    form = read_form(posted, creating=False, current=current, tasks=tasks)
    if form.ok:
        try:
            access.require_write(caller)  # refused even when nothing changed
            if form.fields:
                await access.update_schedule(scheduler, caller, current.id, form.fields)
        except (ValidationError, ScheduleError) as e:
            form.errors[form_field(e.field)] = str(e)
        except TickworkError as e:
            form.errors["_"] = str(e)
        else:
            return redirect(
                f"/schedules/{quote(current.id, safe='')}",
                "Schedule saved." if form.fields else "Nothing to save: no field was changed.",
            )
    return await form_page(
        request,
        caller,
        values=form.values,
        errors=form.errors,
        editing=current.id,
        status_code=400,
        tasks=tasks,
    )


def validation_preview(expr: str, tz: str, start_at: str = "") -> dict[str, Any]:
    """What the form shows under the expression: its meaning and next 5 fires (from the
    start typed, if any: the first fire an interval has, and none before it), or the
    error."""
    expr = expr.strip()
    if not expr:
        return {"empty": True}
    try:
        start = parse_instant(start_at.strip(), "start_at", tz or "UTC")
    except (ValidationError, ScheduleError):  # a bad zone: named with the expression
        start = None  # else named under its own field when the form is sent
    now = datetime.now(UTC)
    try:
        parsed = parse_schedule(expr, timezone=tz or "UTC", start_at=start, now=now)
        if start is not None and parsed.kind == "interval":
            # As typed: a wall time in a DST gap is what the interval's steps keep.
            with contextlib.suppress(ScheduleError):
                parsed = parse_schedule(expr, timezone=tz or "UTC", start_at=start_at.strip())
    except ScheduleError as e:
        return {"error": str(e)}
    times = []
    t = now - timedelta(microseconds=1)  # "now" and an interval's anchor fire at once
    for _ in range(5):
        nxt = parsed.next_after(t)
        if nxt is None:
            break
        times.append(format_instant(nxt, zone(tz)))
        t = nxt
    return {"kind": parsed.kind, "description": parsed.describe(), "next": times}


@router.get("/ui/validate", include_in_schema=False)
async def validate(request: Request) -> Response:
    caller = await current_caller(request)
    if caller is None:
        return Response(status_code=401)
    p = request.query_params
    return fragment(
        "_validate.html",
        preview=validation_preview(
            p.get("schedule", ""), p.get("timezone", "UTC"), p.get("start_at", "")
        ),
    )


async def _task(request: Request, caller: Caller, name: str) -> TaskSpec | None:
    for t in await access.list_tasks(scheduler_of(request), caller):
        if t.name == name:
            return t
    return None


@router.get("/ui/task", include_in_schema=False)
async def task_help(request: Request) -> Response:
    """The chosen task's parameters, under the Task field."""
    caller = await current_caller(request)
    if caller is None:
        return Response(status_code=401)
    return fragment(
        "_task_help.html", task=await _task(request, caller, request.query_params.get("task", ""))
    )


@router.get("/ui/check-data", include_in_schema=False)
async def check_data(request: Request) -> Response:
    """Is the typed data a JSON object that the chosen task accepts?"""
    caller = await current_caller(request)
    if caller is None:
        return Response(status_code=401)
    p = request.query_params
    raw = p.get("data", "").strip() or "{}"
    try:
        value = json_text(raw)
    except ValueError as e:
        return fragment("_data_help.html", error=f"not valid JSON: {e}", ok=False)
    if not isinstance(value, dict):
        return fragment("_data_help.html", error="data must be a JSON object", ok=False)
    task = await _task(request, caller, p.get("task", ""))
    if task is None:
        return fragment("_data_help.html", error=None, ok=False)
    try:
        task.check_data(value)
    except ValidationError as e:
        return fragment("_data_help.html", error=str(e), ok=False)
    return fragment("_data_help.html", error=None, ok=True)


# -- one schedule's actions ---------------------------------------------------------------


@router.post("/schedules/{schedule_id}/{action}", include_in_schema=False)
async def schedule_action(request: Request, schedule_id: str, action: str) -> Response:
    posted = await posted_form(request)
    caller = await writer(request, posted.get("csrf"))
    if not isinstance(caller, Caller):
        return caller
    scheduler = scheduler_of(request)
    page = f"/schedules/{quote(schedule_id, safe='')}"
    try:
        if action == "pause":
            reason = posted.get("reason", "").strip() or None
            await access.pause_schedule(scheduler, caller, schedule_id, reason=reason)
            return redirect(page, "Paused." + (f" Reason: {reason}" if reason else ""))
        if action == "resume":
            await access.resume_schedule(scheduler, caller, schedule_id)
            return redirect(page, "Resumed.")
        if action == "run":
            raw = posted.get("data", "").strip()
            extra = None
            if raw:
                try:
                    extra = json_text(raw)
                except ValueError as e:
                    return await _panel_refused(
                        request,
                        caller,
                        schedule_id,
                        run_form={"data": raw},
                        error=f"the data is not valid JSON ({e})",
                    )
                if not isinstance(extra, dict):
                    return await _panel_refused(
                        request,
                        caller,
                        schedule_id,
                        run_form={"data": raw},
                        error="the data must be a JSON object",
                    )
            try:
                run = await access.run_schedule(scheduler, caller, schedule_id, data=extra)
            except ValidationError as e:
                return await _panel_refused(
                    request, caller, schedule_id, run_form={"data": raw}, error=str(e)
                )
            return redirect(f"/runs/{quote(run.id, safe='')}", "Run started.")
        if action == "backfill":
            start, end = posted.get("start", ""), posted.get("end", "")
            current = await access.get_schedule(scheduler, caller, schedule_id)
            problems = _range_problems(start, end, current.timezone)
            if not problems:
                try:
                    runs = await access.backfill(scheduler, caller, schedule_id, start, end)
                except ValidationError as e:
                    problems[e.field if e.field in ("start", "end") else "_"] = str(e)
                except ConflictError as e:  # a manual schedule: said in the panel too
                    problems["_"] = str(e)
                else:
                    return redirect(
                        page, f"Backfill created {len(runs)} run{'s' if len(runs) != 1 else ''}."
                    )
            return await _panel_refused(
                request,
                caller,
                schedule_id,
                backfill_form={
                    "start": start,
                    "end": end,
                    "start_error": problems.get("start", ""),
                    "end_error": problems.get("end", ""),
                },
                error=problems.get("_", ""),
            )
        if action == "delete":
            if posted.get("confirmed") != "1":
                await access.get_schedule(scheduler, caller, schedule_id)
                return confirm(
                    request,
                    caller,
                    f"/schedules/{quote(schedule_id, safe='')}/delete",
                    [("csrf", posted.get("csrf", ""))],
                    title=f"Delete {schedule_id}?",
                    message=f"Delete schedule {schedule_id}? Waiting runs are cancelled;"
                    " the run history is kept.",
                    button="Delete",
                    back=page,
                )
            await access.delete_schedule(scheduler, caller, schedule_id)
            return redirect("/schedules", f"Deleted schedule {schedule_id}.")
    except ValidationError as e:
        return redirect(page, f"{action.capitalize()}: {e}", "error")
    except TickworkError as e:
        return refused(request, caller, e)
    return render(
        request,
        "error.html",
        caller,
        status_code=404,
        title="Not found",
        message=f"No action {action!r}.",
    )


async def _panel_refused(
    request: Request,
    caller: Caller,
    schedule_id: str,
    *,
    error: str,
    run_form: dict[str, str] | None = None,
    backfill_form: dict[str, str] | None = None,
) -> Response:
    """A refused Run now or Backfill: the schedule's page again, the panel open with
    what was typed and why it was refused (a redirect would lose what was typed)."""
    s = await data.schedule_or_none(scheduler_of(request), caller, schedule_id)
    if s is None:
        return refused(request, caller, NotFoundError("schedule", schedule_id))
    for form in (run_form, backfill_form):
        if form is not None:
            form["error"] = error
    return await pages.render_schedule(
        request, caller, s, status_code=400, run_form=run_form, backfill_form=backfill_form
    )


def _range_problems(start: str, end: str, timezone: str) -> dict[str, str]:
    """Each end of a backfill's range that cannot be read (in the schedule's zone)."""
    problems: dict[str, str] = {}
    for name, value in (("start", start), ("end", end)):
        if not value.strip():
            problems[name] = f"give the {name} of the range"
            continue
        try:
            parse_instant(value, name, timezone)
        except ValidationError as e:
            problems[name] = str(e)
    return problems


# -- one run ---------------------------------------------------------------------------


@router.post("/runs/{run_id}/cancel", include_in_schema=False)
async def cancel_run(request: Request, run_id: str) -> Response:
    """Cancel a waiting run, or ask the node running it to stop it (after a question)."""
    posted = await posted_form(request)
    caller = await writer(request, posted.get("csrf"))
    if not isinstance(caller, Caller):
        return caller
    scheduler = scheduler_of(request)
    page = f"/runs/{quote(run_id, safe='')}"
    try:
        if posted.get("confirmed") != "1":
            await access.get_run(scheduler, caller, run_id)
            return confirm(
                request,
                caller,
                f"{page}/cancel",
                [("csrf", posted.get("csrf", ""))],
                title=f"Cancel run {run_id}?",
                message=f"Cancel run {run_id}? {pages.CANCEL_EFFECT}",
                button="Cancel run",
                back=page,
                back_label="Keep it",
            )
        run = await access.cancel_run(scheduler, caller, run_id)
    except ConflictError as e:
        return redirect(page, f"Not cancelled: {e}.", "error")
    except TickworkError as e:
        return refused(request, caller, e)
    if run.status == "cancelled":
        return redirect(page, "Run cancelled.")
    return redirect(page, "Cancel requested: the node running it is stopping it.")


# -- bulk actions over the list -----------------------------------------------------------


@router.post("/schedules", include_in_schema=False)
async def bulk(request: Request) -> Response:
    """Pause, resume, run or delete the selected schedules, or all that match the filter."""
    form = await request.form()
    caller = await writer(request, str(form.get("csrf", "")))
    if not isinstance(caller, Caller):
        return caller
    action = str(form.get("action", ""))
    if action not in BULK_ACTIONS:
        return redirect("/schedules", f"Unknown action {action!r}.", "error")
    scheduler = scheduler_of(request)
    filters = {k: str(form.get(k, "")) for k in ("q", "status", "task", "tag")}
    back = "/schedules?" + "&".join(f"{k}={quote(v)}" for k, v in filters.items() if v)
    if form.get("scope") == "filter":
        ids = await data.matching_ids(
            scheduler,
            caller,
            q=filters["q"],
            status=filters["status"] or None,
            task=filters["task"] or None,
            tag=filters["tag"] or None,
        )
    else:
        ids = [str(v) for v in form.getlist("ids")]
    if not ids:
        return redirect(back, "No schedule selected.", "error")
    if form.get("confirmed") != "1":
        kept = [(k, str(v)) for k, v in form.multi_items() if k != "confirmed"]
        verb = {"pause": "Pause", "resume": "Resume", "run": "Run", "delete": "Delete"}[action]
        n = len(ids)
        return confirm(
            request,
            caller,
            "/schedules",
            kept,
            title=f"{verb} {n} schedule{'s' if n != 1 else ''}?",
            message=f"{verb} {n} schedule{'s' if n != 1 else ''}"
            f"{' now' if action == 'run' else ''}?"
            + (" Their run history is kept." if action == "delete" else ""),
            button=verb,
            back=back,
        )
    done, failed = 0, []
    for sid in ids:
        try:
            if action == "pause":
                await access.pause_schedule(
                    scheduler, caller, sid, reason=str(form.get("reason", "")) or None
                )
            elif action == "resume":
                await access.resume_schedule(scheduler, caller, sid)
            elif action == "run":
                await access.run_schedule(scheduler, caller, sid)
            else:
                await access.delete_schedule(scheduler, caller, sid)
            done += 1
        except PermissionDeniedError as e:
            return refused(request, caller, e)
        except TickworkError as e:
            failed.append(f"{sid}: {e}")
    message = f"{BULK_ACTIONS[action]} {done} schedule{'s' if done != 1 else ''}."
    if failed:
        message += f" {len(failed)} failed: " + "; ".join(failed[:3])
    return redirect(back, message, "error" if failed else "ok")


def confirm(
    request: Request,
    caller: Caller,
    action: str,
    fields: list[tuple[str, str]],
    *,
    title: str,
    message: str,
    button: str,
    back: str,
    back_label: str = "Cancel",
) -> Response:
    """The server's own confirmation, for a browser whose script did not ask."""
    return render(
        request,
        "confirm.html",
        caller,
        title=title,
        message=message,
        action=action,
        fields=fields,
        button=button,
        back=back,
        back_label=back_label,
    )
