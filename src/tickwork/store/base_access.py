"""The store interface, part two: who may do what and what they did (API tokens, the
audit log), who is signed in to the dashboard and what each dashboard user chose to
see. ``Store`` (``store/base.py``) inherits it; the same rules hold: one transaction
per method, no clock read."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime

from tickwork.models import ApiToken, AuditEntry, DashboardSession


class AccessStore(ABC):
    """Tokens, the audit log, dashboard sign-ins and per-user settings (SQL in
    store/sql_access.py, store/sql_sessions.py and store/sql_user_settings.py)."""

    # -- tokens and audit --------------------------------------------------------------

    @abstractmethod
    def create_token(self, token: ApiToken, secret_hash: str, audit: AuditEntry | None) -> None:
        """Store a token by the hash of its secret (never the secret)."""

    @abstractmethod
    def create_first_token(
        self, token: ApiToken, secret_hash: str, audit: AuditEntry | None
    ) -> bool:
        """``create_token`` only when no token exists at all (checked in the same
        transaction, so two first starts make one). False when one existed."""

    @abstractmethod
    def get_token(self, token_id: str) -> tuple[ApiToken, str] | None:
        """The token and its secret's hash, or None."""

    @abstractmethod
    def touch_token(self, token_id: str, now: datetime) -> None:
        """Record that the token was used at ``now``."""

    @abstractmethod
    def list_tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        """Tokens, oldest first."""

    @abstractmethod
    def revoke_token(self, token_id: str, now: datetime, audit: AuditEntry | None) -> ApiToken:
        """Revoke at once; ``NotFoundError`` / ``ConflictError`` (already revoked)."""

    @abstractmethod
    def record_audit(self, entry: AuditEntry) -> None:
        """Write one audit entry on its own (for a change that is not the store's)."""

    @abstractmethod
    def list_audit(
        self,
        *,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first (by id, which only grows: ``before_id`` pages without repeating
        or skipping while entries are added)."""

    # -- dashboard sign-ins (SQL in store/sql_sessions.py) ------------------------------

    @abstractmethod
    def create_session(self, session: DashboardSession, secret_hash: str, now: datetime) -> None:
        """Store a sign-in by the hash of its secret (never the secret), and delete in
        the same transaction every sign-in expired at ``now``."""

    @abstractmethod
    def get_session(self, session_id: str) -> tuple[DashboardSession, str] | None:
        """The sign-in and its secret's hash, or None; its ``token_revoked_at`` read
        from its API token's row in the same statement."""

    @abstractmethod
    def delete_session(self, session_id: str) -> None:
        """End a sign-in (sign-out); nothing happens when there is none."""

    # -- what each dashboard user chose to see (SQL in store/sql_user_settings.py) ----

    @abstractmethod
    def user_settings(self, user: str) -> dict[str, str]:
        """The settings ``user`` saved (name to value); empty when none."""

    @abstractmethod
    def set_user_settings(self, user: str, values: Mapping[str, str], now: datetime) -> None:
        """Save ``values`` for ``user`` in one transaction, replacing those of the same
        names and leaving the others. A name over 64 characters or a value over 256
        raises ``ValidationError``."""
