"""The Tokens page's writes (admins): create a token, and revoke one after a question.
Every post passes the session's CSRF check and the API's access rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tickwork.api import access_admin
from tickwork.api.auth import Caller
from tickwork.engine.tokens import parse_expiry
from tickwork.errors import ConflictError, TickworkError, ValidationError
from tickwork.limits import check_text
from tickwork.web.actions import confirm, posted_form, refused
from tickwork.web.address import DashboardRoute
from tickwork.web.render import redirect, render
from tickwork.web.signin import scheduler_of, writer

router = APIRouter(route_class=DashboardRoute)


@router.post("/tokens", include_in_schema=False)
async def create_token(request: Request) -> Response:
    """Make a token; a refused form comes back with what was typed and every bad field
    named under it."""
    posted = await posted_form(request)
    caller = await writer(request, posted.get("csrf"))
    if not isinstance(caller, Caller):
        return caller
    scheduler = scheduler_of(request)
    typed = {k: posted.get(k, "").strip() for k in ("user", "role", "expires")}
    errors = _token_form_errors(typed, scheduler.clock.now())
    if not errors:
        try:
            token, secret = await access_admin.create_token(
                scheduler,
                caller,
                typed["user"],
                admin=typed["role"] == "admin",
                read_only=typed["role"] == "read-only",
                expires_in=expiry(typed["expires"], scheduler.clock.now()),
            )
        except ValidationError as e:
            errors[e.field if e.field in typed else "_"] = str(e)
        except TickworkError as e:
            return refused(request, caller, e)
        else:
            return await _tokens_page(request, caller, secret={"user": token.user, "token": secret})
    return await _tokens_page(request, caller, typed=typed, errors=errors, status_code=400)


TOKEN_ROLES = ("user", "read-only", "admin")


def _token_form_errors(typed: dict[str, str], now: datetime) -> dict[str, str]:
    """Each field of the token form that cannot be right, with why."""
    errors: dict[str, str] = {}
    user = typed["user"]
    if not user:
        errors["user"] = "name the user the token acts as"
    elif len(user) > 200:
        errors["user"] = f"the user's name is {len(user)} characters long; at most 200"
    else:
        try:
            check_text(user, "user")
        except ValidationError as e:
            errors["user"] = str(e)
    if typed["role"] not in TOKEN_ROLES:
        errors["role"] = f"one of {', '.join(TOKEN_ROLES)}"
    try:
        expiry(typed["expires"], now)
    except ValidationError as e:
        errors["expires"] = str(e)
    return errors


async def _tokens_page(
    request: Request,
    caller: Caller,
    *,
    secret: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        tokens = await access_admin.list_tokens(scheduler_of(request), caller)
    except TickworkError as e:
        return refused(request, caller, e)
    return render(
        request,
        "tokens.html",
        caller,
        status_code=status_code,
        title="Tokens",
        nav="Tokens",
        tokens=tokens,
        secret=secret,
        typed=typed or {},
        errors=errors or {},
    )


def expiry(text: str, now: datetime) -> timedelta | None:
    """The lifetime typed (``30d``, ``12h``, ``2w``, ``1mo``, ``1y``), read as the CLI and
    the REST API read it; empty: the token never expires."""
    text = text.strip()
    return parse_expiry(text, now) if text else None


@router.post("/tokens/{token_id}/revoke", include_in_schema=False)
async def revoke_token(request: Request, token_id: str) -> Response:
    """Revoke a token, after a question: the page's script asks it, else the server's
    own confirmation page does (a token revoked stops working at once)."""
    posted = await posted_form(request)
    caller = await writer(request, posted.get("csrf"))
    if not isinstance(caller, Caller):
        return caller
    scheduler = scheduler_of(request)
    try:
        if posted.get("confirmed") != "1":
            tokens = await access_admin.list_tokens(scheduler, caller)
            token = next((t for t in tokens if t.id == token_id), None)
            if token is None:  # the list holds active tokens only
                raise ConflictError(f"no active token {token_id!r}")
            yours = (
                " It is the token you are signed in with: you will be signed out."
                if caller.token_id == token.id
                else ""
            )
            return confirm(
                request,
                caller,
                f"/tokens/{quote(token_id, safe='')}/revoke",
                [("csrf", posted.get("csrf", ""))],
                title=f"Revoke token {token_id}?",
                message=f"Revoke token {token_id} of {token.user} ({token.role})?"
                f" It stops working at once.{yours}",
                button="Revoke",
                back="/tokens",
                back_label="Keep it",
            )
        await access_admin.revoke_token(scheduler, caller, token_id)
    except ConflictError as e:
        return redirect("/tokens", f"Not revoked: {e}.", "error")
    except TickworkError as e:
        return refused(request, caller, e)
    return redirect("/tokens", f"Revoked token {token_id}.")
