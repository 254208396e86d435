"""Who is signed in to the dashboard, and the checks every form passes.

The session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS) holds the secret of a
sign-in stored in the database (``Scheduler.start_session``), never the token the user
signed in with: a copy of the cookie cannot be used as an API token, and signing out
deletes the sign-in, so every ``serve`` process refuses the cookie from then on. Each
request reads the sign-in by its id: a sign-in ends when it expires (after
``SESSION_MAX_AGE``, or when its credential expires if sooner) and at once when the API
token it was made with is revoked. The CSRF token of a form is an HMAC of the session
secret: a page of another site can neither read the cookie nor compute it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from fastapi import Request, Response

SESSION_COOKIE: Final = "tickwork_session"  # the rate limit keys dashboard users by it
THEME_COOKIE: Final = "tw_theme"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "x-csrf-token"
SESSION_MAX_AGE: Final = 7 * 24 * 3600

TimeMode = Literal["schedule", "utc", "browser"]
TIME_MODES: Final = ("schedule", "utc", "browser")


class CSRFError(Exception):
    """A form came without the token of the signed-in session."""


def csrf_token(session_token: str) -> str:
    """The token every form of this session carries; derived, so nothing is stored."""
    return hmac.new(session_token.encode(), b"tickwork-dashboard-csrf", hashlib.sha256).hexdigest()


def session_token(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value or None


def set_session(response: Response, request: Request, secret: str, lifetime: timedelta) -> None:
    """The cookie of a sign-in: its secret, kept by the browser as long as it lasts."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max(1, int(lifetime.total_seconds())),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def check_csrf(request: Request, token: str, sent: str | None) -> None:
    """Refuse a write whose form token does not match, or that another site sent.

    The Origin header, when the browser sends one, must be this host: a second line of
    defence behind the token.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise CSRFError(f"request from another origin ({origin})")
    expected = csrf_token(token)
    candidate = sent or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(candidate, expected):
        raise CSRFError("the form is missing its security token or is stale; reload the page")


@dataclass(frozen=True, slots=True)
class Preferences:
    """How the signed-in user wants times shown (saved for them, on any browser) and
    how this browser wants colours."""

    time_mode: TimeMode = "schedule"
    browser_zone: str | None = None
    theme: Literal["system", "light", "dark"] = "system"


#: The names of the user's saved settings (``Store.user_settings``).
TIME_SETTING: Final = "time_mode"
ZONE_SETTING: Final = "browser_zone"
#: Where ``current_caller`` leaves the signed-in user's saved settings for ``render``.
SETTINGS_STATE: Final = "dashboard_settings"


def preferences(request: Request, user: str | None) -> Preferences:
    saved: dict[str, str] = (getattr(request.state, SETTINGS_STATE, None) or {}) if user else {}
    mode = saved.get(TIME_SETTING, "schedule")
    theme = request.cookies.get(THEME_COOKIE, "system")
    return Preferences(
        time_mode=mode if mode in TIME_MODES else "schedule",  # type: ignore[arg-type]
        browser_zone=saved.get(ZONE_SETTING) or None,
        theme=theme if theme in ("light", "dark") else "system",  # type: ignore[arg-type]
    )
