"""Signing in and out, the display preferences, and the caller of every dashboard page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from tickwork.api.auth import Caller, authenticate
from tickwork.api.protection import note_credential
from tickwork.api.settings import ApiSettings
from tickwork.engine.scheduler import Scheduler
from tickwork.engine.tokens import bound_hash, same_secret
from tickwork.engine.user_settings import save_user_settings, user_settings
from tickwork.web.address import DashboardRoute
from tickwork.web.render import redirect, render
from tickwork.web.session import (
    SESSION_MAX_AGE,
    SETTINGS_STATE,
    TIME_MODES,
    TIME_SETTING,
    ZONE_SETTING,
    CSRFError,
    check_csrf,
    clear_session,
    session_token,
    set_session,
)

router = APIRouter(route_class=DashboardRoute)


def scheduler_of(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


async def current_caller(request: Request) -> Caller | None:
    """The caller the session stands for, or None (not signed in, signed out, expired,
    or the credential it was made with revoked)."""
    secret = session_token(request)
    if secret is None:
        return None
    cached = getattr(request.state, "dashboard_caller", None)
    if isinstance(cached, Caller):
        return cached
    scheduler = scheduler_of(request)
    caller = await session_caller(scheduler, request.app.state.settings, secret)
    note_credential(request.scope, "session", caller is not None)
    request.state.dashboard_caller = caller
    if caller is not None:  # their display settings, for the page to render with
        setattr(request.state, SETTINGS_STATE, await user_settings(scheduler, caller.user))
    return caller


async def session_caller(scheduler: Scheduler, settings: ApiSettings, secret: str) -> Caller | None:
    """The caller of a session cookie's secret, or None. A sign-in made with
    ``TICKWORK_ADMIN_TOKEN`` ends when the server's admin token is another (or none);
    one made with a JWT when the server's JWT keys (or the issuer or audience it
    requires) are others, or it takes no JWT; one made with an API token when that
    token is revoked (read with the session)."""
    session = await scheduler.check_session(secret)
    if session is None:
        return None
    if session.via in ("admin", "jwt"):
        credential = server_credential(settings, session.via)
        if credential is None or not same_secret(
            bound_hash(secret, credential), session.credential_hash or ""
        ):
            return None
    return Caller(
        user=session.user,
        admin=session.admin,
        read_only=session.read_only,
        token_id=session.token_id,
        via=session.via,
        expires_at=session.expires_at,
    )


def server_credential(settings: ApiSettings, via: str) -> str | None:
    """What the server checks a credential of kind ``via`` against, when it takes
    such credentials: its admin token, or its JWT keys with the issuer and audience it
    requires (a sign-in lasts only as long as they stay the same: a key replaced
    because it leaked ends the sign-ins made with it). None for an API token."""
    if via == "admin":
        return settings.admin_token
    if via == "jwt" and settings.jwt_enabled:
        keys = (settings.jwt_secret, settings.jwt_public_key)
        required = (settings.jwt_issuer, settings.jwt_audience)
        return "\n".join(["jwt", *(part or "" for part in (*keys, *required))])
    return None


def to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request") == "true":
        # A page's live refresh after its session ended: the whole page goes to the
        # sign-in page (and back to itself after), instead of a refresh that finds
        # none of its parts in the sign-in page and empties them.
        page = urlsplit(request.headers.get("hx-current-url", ""))
        target = safe_next(page.path + (f"?{page.query}" if page.query else ""))
        return Response(
            status_code=401, headers={"HX-Redirect": f"/login?next={quote(target, safe='')}"}
        )
    if request.method not in ("GET", "HEAD"):
        # A form sent after the session ended: its address only takes posts, so signing in
        # leads back to the page the form was on (this site's only), to send it again.
        return redirect(
            f"/login?next={quote(page_of_form(request), safe='')}",
            "You were signed out before that was sent, and nothing was changed: sign in,"
            " then send it again.",
            "error",
        )
    return redirect(f"/login?next={quote(target, safe='')}")


def page_of_form(request: Request) -> str:
    """The page of this site a form was sent from (its ``Referer``), else ``/``."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.headers.get("host", "") or not referer.path:
        return "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def writer(request: Request, csrf: str | None) -> Caller | Response:
    """The signed-in caller of a form post, after its CSRF check; else where to go."""
    caller = await current_caller(request)
    if caller is None:
        return to_sign_in(request)
    token = session_token(request) or ""
    try:
        check_csrf(request, token, csrf)
    except CSRFError as e:
        return render(
            request, "error.html", caller, status_code=403, title="Refused", message=str(e)
        )
    return caller


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, title="Sign in", next=safe_next(next), error=None)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    token = token.strip()
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
        # Another site must not sign a browser in (to someone else's account).
        return render(
            request,
            "error.html",
            None,
            status_code=403,
            title="Refused",
            message=f"sign-in from another origin ({origin})",
        )
    caller = (
        await authenticate(scheduler_of(request), request.app.state.settings, token)
        if token
        else None
    )
    if caller is None:
        return render(
            request,
            "login.html",
            None,
            status_code=401,
            title="Sign in",
            next=safe_next(next),
            error="That token is not valid (unknown, revoked or expired).",
        )
    replaced = session_token(request)
    if replaced is not None:
        # Signing in again in this browser replaces its sign-in: the one its cookie held
        # ends too, or a copy of that cookie would outlive the next sign-out.
        await scheduler_of(request).end_session(replaced)
    session, secret = await scheduler_of(request).start_session(
        caller.user,
        via=caller.via,
        lifetime=timedelta(seconds=SESSION_MAX_AGE),
        admin=caller.admin,
        read_only=caller.read_only,
        token_id=caller.token_id,
        server_credential=server_credential(request.app.state.settings, caller.via),
        credential_expires_at=caller.expires_at,
    )
    response = redirect(safe_next(next))
    set_session(response, request, secret, session.expires_at - session.created_at)
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    caller = await writer(request, csrf)
    if not isinstance(caller, Caller):
        return caller
    # Ended in the database, for every node: a copy of the cookie is refused from now on.
    await scheduler_of(request).end_session(session_token(request) or "")
    response = redirect("/login", "Signed out.")
    clear_session(response)
    return response


@router.post("/preferences", include_in_schema=False)
async def set_preferences(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    time: Annotated[str, Form()] = "schedule",
    zone: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    caller = await writer(request, csrf)
    if not isinstance(caller, Caller):
        return caller
    mode = time if time in TIME_MODES else "schedule"
    # Saved for the user, not the browser: they see it on every browser they sign in on.
    await save_user_settings(
        scheduler_of(request), caller.user, {TIME_SETTING: mode, ZONE_SETTING: zone[:64]}
    )
    return redirect(safe_next(next))
