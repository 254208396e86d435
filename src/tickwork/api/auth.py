"""Who is calling: API tokens, ``TICKWORK_ADMIN_TOKEN`` and JWTs, turned into a ``Caller``.

``authenticate`` is the one function that reads credentials; the ``current_caller``
dependency makes every route use it. Secrets are compared in constant time (API
tokens by the hash of the whole token; the admin token by ``hmac.compare_digest``)
and never logged: log lines name a token by its id only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from tickwork.api.errors import unauthorized
from tickwork.api.protection import note_credential
from tickwork.api.settings import ApiSettings
from tickwork.engine.scheduler import Scheduler
from tickwork.engine.tokens import PREFIX, same_secret
from tickwork.errors import ValidationError
from tickwork.limits import check_text

log = logging.getLogger("tickwork.api.auth")

_ASYMMETRIC = ["RS256", "ES256"]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: their user name and what they may do."""

    user: str
    admin: bool = False
    read_only: bool = False
    #: The API token used, if any (None: admin token or JWT).
    token_id: str | None = None
    #: The kind of credential: an API token, ``TICKWORK_ADMIN_TOKEN`` or a JWT.
    via: Literal["token", "admin", "jwt"] = "token"
    #: When the credential stops being accepted (an API token's expiry, a JWT's exp).
    expires_at: datetime | None = None


async def authenticate(scheduler: Scheduler, settings: ApiSettings, bearer: str) -> Caller | None:
    """The caller a bearer credential stands for, or None (unknown, revoked, expired,
    forged). Never raises for a bad credential."""
    bearer = bearer.strip()
    if not bearer or len(bearer) > 8192:
        return None
    if settings.admin_token is not None and _same(bearer, settings.admin_token):
        return Caller(user="admin", admin=True, via="admin")
    if bearer.startswith(PREFIX):
        token = await scheduler.check_token(bearer)
        if token is None:
            return None
        return Caller(
            user=token.user,
            admin=token.admin,
            read_only=token.read_only,
            token_id=token.id,
            expires_at=token.expires_at,
        )
    if settings.jwt_enabled and bearer.count(".") == 2:
        return _jwt_caller(settings, bearer)
    return None


def _same(given: str, expected: str) -> bool:
    # Hashes first: compare_digest's time then depends on neither secret's length.
    return same_secret(
        hashlib.sha256(given.encode()).hexdigest(), hashlib.sha256(expected.encode()).hexdigest()
    )


def proven_alone(settings: ApiSettings, bearer: str) -> bool:
    """Whether a bearer credential is valid by what the server checks without the
    database: ``TICKWORK_ADMIN_TOKEN``, or a JWT its keys verify. The rate limit gives
    such a credential a budget of its own from its first request (``RateLimit``)."""
    bearer = bearer.strip()
    if not bearer or len(bearer) > 8192:
        return False
    if settings.admin_token is not None and _same(bearer, settings.admin_token):
        return True
    if not settings.jwt_enabled or bearer.startswith(PREFIX) or bearer.count(".") != 2:
        return False
    return _jwt_caller(settings, bearer, quiet=True) is not None


def _jwt_caller(settings: ApiSettings, token: str, *, quiet: bool = False) -> Caller | None:
    """The caller of a JWT, or None; ``quiet``: why it is refused is not logged (the
    rate limit's look, the request's check logs it)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    alg = header.get("alg")
    key: Any
    if alg == "HS256" and settings.jwt_secret:
        key, algorithms = settings.jwt_secret, ["HS256"]
    elif alg in _ASYMMETRIC and settings.jwt_public_key:
        key, algorithms = settings.jwt_public_key, _ASYMMETRIC
    else:
        return None  # "none", or an algorithm whose key is not configured
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require": ["sub"],
                "verify_aud": settings.jwt_audience is not None,
                "verify_iss": settings.jwt_issuer is not None,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        if not quiet:
            log.info("JWT refused: %s", type(exc).__name__)
        return None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or not _storable(sub):
        return None
    read_only = claims.get("read_only", False)
    if not isinstance(read_only, bool):
        # "yes", 1, "false": which the issuer meant is a guess, and guessing "no" would
        # let a token meant to be read-only write.
        if not quiet:
            log.info("JWT refused: its read_only claim is %s, not true or false", type(read_only))
        return None
    exp = claims.get("exp")  # checked by decode: a number when present
    return Caller(
        user=sub,
        admin=is_admin_claims(claims),
        read_only=read_only,
        via="jwt",
        expires_at=_instant(exp) if isinstance(exp, int | float) else None,
    )


def _instant(epoch: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):  # past what a datetime holds: no limit
        return None


def _storable(user: str) -> bool:
    """Whether a user name can be an owner and an audit actor on every database (no
    NUL, no lone surrogate, at most 200 characters, as a token's user)."""
    try:
        check_text(user, "sub", 200)
    except ValidationError:
        return False
    return True


def is_admin_claims(claims: dict[str, Any]) -> bool:
    """Admin when ``admin`` is true, ``role`` is ``"admin"`` or ``roles`` contains it."""
    roles = claims.get("roles")
    return (
        claims.get("admin") is True
        or claims.get("role") == "admin"
        or (isinstance(roles, list) and "admin" in roles)
    )


def bearer_of(request: Request) -> str | None:
    """The bearer credential of the request's ``Authorization`` header, if it has one."""
    return read_bearer(request)[0]


def read_bearer(request: Request) -> tuple[str | None, str]:
    """(the bearer credential, "") or (None, what is wrong with the header), for a 401
    that says it. The header's value is never quoted: it may hold a secret."""
    header = request.headers.get("authorization")  # the first, if sent twice
    if header is None:
        return None, "no credentials"
    parts = header.split(None, 1)
    if not parts:
        return None, "the Authorization header is empty"
    credential = parts[1].strip() if len(parts) > 1 else ""
    if parts[0].lower() != "bearer":
        if not credential:
            return None, "the Authorization header has no scheme before the credential"
        return None, "the Authorization header's scheme is not Bearer"
    if not credential:
        return None, "the Authorization header has no credential after Bearer"
    return credential, ""


async def current_caller(request: Request) -> Caller:
    """The FastAPI dependency of every authenticated route: the caller, or 401."""
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    bearer, problem = read_bearer(request)
    if bearer is None:
        note_credential(request.scope, "bearer", False)
        raise unauthorized(problem)
    caller = await authenticate(request.app.state.scheduler, request.app.state.settings, bearer)
    note_credential(request.scope, "bearer", caller is not None)
    if caller is None:
        raise unauthorized("invalid, expired or revoked credentials")
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
