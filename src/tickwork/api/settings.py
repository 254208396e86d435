"""What the REST API is configured with: credentials it accepts and its limits.

Read from the environment (``TICKWORK_<NAME>``) by ``tickwork serve``; tests and
programs embedding the API build ``ApiSettings`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tickwork.errors import ValidationError

DEFAULT_RATE_LIMIT: Final = 600
DEFAULT_MAX_BODY: Final = 1024 * 1024
#: The shortest HS256 secret taken, in bytes: the size of the hash's output, as RFC 7518
#: (3.2) requires. Every user holds JWTs signed with it, and can test guesses of a
#: shorter one offline as fast as they can hash, then sign themselves an admin's.
MIN_JWT_SECRET_BYTES: Final = 32
#: The shortest ``TICKWORK_ADMIN_TOKEN`` taken, in bytes: anyone who reaches the server
#: may try it, and a word or a placeholder (``change-me``) is among the first guesses.
MIN_ADMIN_TOKEN_BYTES: Final = 16


@dataclass(frozen=True)
class ApiSettings:
    """The API's settings. Secrets are kept out of ``repr``."""

    admin_token: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)
    #: PEM text of the RS256/ES256 public key.
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: Requests per minute per token (or per client without one); 0: no limit.
    rate_limit: int = DEFAULT_RATE_LIMIT
    #: Largest request body in bytes.
    max_body: int = DEFAULT_MAX_BODY
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        token = self.admin_token
        if token is not None and len(token.encode()) < MIN_ADMIN_TOKEN_BYTES:
            raise ValidationError(
                f"TICKWORK_ADMIN_TOKEN is {len(token.encode())} bytes long: it must be at"
                f" least {MIN_ADMIN_TOKEN_BYTES}, as anyone who reaches the server may guess"
                " it; make one with"
                " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
                field="admin_token",
            )
        secret = self.jwt_secret
        if secret is not None and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValidationError(
                f"TICKWORK_JWT_SECRET is {len(secret.encode())} bytes long: an HS256 secret"
                f" must be at least {MIN_JWT_SECRET_BYTES} (RFC 7518), or whoever holds one"
                " of its JWTs can guess it offline and sign their own; make one with"
                " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
                field="jwt_secret",
            )

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        """From ``TICKWORK_ADMIN_TOKEN``, ``TICKWORK_JWT_*``, ``TICKWORK_RATE_LIMIT``,
        ``TICKWORK_MAX_BODY`` and ``TICKWORK_CORS_ORIGINS``; a bad value is a
        ``ValidationError`` naming the variable."""
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(f"TICKWORK_{name}", "").strip()
            return value or None

        def number(name: str, default: int) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValidationError(
                    f"TICKWORK_{name}={raw!r} is not a whole number", field=name.lower()
                ) from None
            if value < 0:
                raise ValidationError(f"TICKWORK_{name} must be >= 0", field=name.lower())
            return value

        return cls(
            admin_token=text("ADMIN_TOKEN"),
            jwt_secret=text("JWT_SECRET"),
            jwt_public_key=load_public_key(text("JWT_PUBLIC_KEY")),
            jwt_issuer=text("JWT_ISSUER"),
            jwt_audience=text("JWT_AUDIENCE"),
            rate_limit=number("RATE_LIMIT", DEFAULT_RATE_LIMIT),
            max_body=number("MAX_BODY", DEFAULT_MAX_BODY),
            cors_origins=tuple(
                o.strip() for o in (text("CORS_ORIGINS") or "").split(",") if o.strip()
            ),
        )


def load_public_key(value: str | None) -> str | None:
    """PEM text as given, or read from the file the value names."""
    if value is None:
        return None
    if "-----BEGIN" in value:
        return value
    path = Path(value).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise ValidationError(
            f"TICKWORK_JWT_PUBLIC_KEY is neither PEM text nor a readable file: {path}: "
            f"{exc.strerror}",
            field="jwt_public_key",
        ) from None
