"""API tokens and dashboard sign-ins: how a secret is made, shown and recognised.

A token reads ``tw_<id>_<secret>``; the secret of a dashboard sign-in (its session
cookie) ``tws_<id>_<secret>``, kept the same way. The store keeps the id and a SHA-256 hash of the
whole token, never the token: the id finds the row, the hash is compared in constant
time. The hash needs no salt or stretching: the secret is 256 random bits, not a
password a person chose.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from tickwork.errors import ScheduleError, ValidationError
from tickwork.schedule.interval import parse_interval

PREFIX: Final = "tw_"
SESSION_PREFIX: Final = "tws_"
_SHAPE: Final = re.compile(r"tw_([a-z0-9]{12})_[A-Za-z0-9_-]{20,}")
_SESSION_SHAPE: Final = re.compile(r"tws_([a-z0-9]{12})_[A-Za-z0-9_-]{20,}")


def new_token() -> tuple[str, str]:
    """(id, token) of a fresh token."""
    token_id = secrets.token_hex(6)
    return token_id, f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def new_session() -> tuple[str, str]:
    """(id, secret) of a fresh dashboard sign-in."""
    session_id = secrets.token_hex(6)
    return session_id, f"{SESSION_PREFIX}{session_id}_{secrets.token_urlsafe(32)}"


def session_id_of(secret: str) -> str | None:
    """The id in a sign-in's secret, or None when it does not look like one."""
    m = _SESSION_SHAPE.fullmatch(secret)
    return m.group(1) if m else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id_of(token: str) -> str | None:
    """The id in a token, or None when it does not look like one of ours."""
    m = _SHAPE.fullmatch(token)
    return m.group(1) if m else None


def bound_hash(session_secret: str, credential: str) -> str:
    """What a dashboard sign-in keeps of the server credential it was made under (the
    admin token, the JWT keys): an HMAC keyed by the sign-in's own secret, which the
    database does not hold. A plain hash would let anyone with a copy of the database
    try guesses of a weak credential offline; this one needs the session cookie too."""
    return hmac.new(session_secret.encode(), credential.encode(), hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (or of their hashes)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def parse_expiry(text: str, now: datetime) -> timedelta:
    """A token's lifetime from an interval (``30d``, ``12h``, ``1w``, ``PT1H``, ``1y``)
    given at ``now``: months and years are calendar ones, so a token made for ``1y``
    expires on the same day a year later (on 28 February from a 29th). ``ValidationError``
    naming ``expires`` when it is not an interval."""
    try:
        step = parse_interval(text.strip())
    except ScheduleError as exc:
        raise ValidationError(f"expires: {exc}", field="expires") from None
    now = now.astimezone(UTC)
    try:
        year, month0 = divmod(now.year * 12 + now.month - 1 + step.months, 12)
        day = min(now.day, calendar.monthrange(year, month0 + 1)[1])
        then = now.replace(year=year, month=month0 + 1, day=day)
        return then - now + timedelta(days=step.days, seconds=step.seconds)
    except (ValueError, OverflowError):  # past the year 9999
        raise ValidationError(f"expires {text!r} is too long", field="expires") from None
