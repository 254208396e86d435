"""The SQL of the dashboard's sign-ins (both dialects): stored when a user signs in,
read at each of their requests, deleted when they sign out or by the next sign-in
once expired.

``SqlStore`` inherits this.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tickwork.models import DashboardSession
from tickwork.store.sql_hooks import SqlHooks

if TYPE_CHECKING:
    pass


class SessionsSql(SqlHooks):
    """Dashboard sign-ins (a mixin of ``SqlStore``)."""

    def create_session(self, session: DashboardSession, secret_hash: str, now: datetime) -> None:
        with self._write() as tx:
            tx.execute(self._sql("delete_expired_sessions"), (self._ts(now),))
            tx.execute(
                self._sql("insert_session"),
                (
                    session.id,
                    secret_hash,
                    session.user,
                    session.admin,
                    session.read_only,
                    session.via,
                    session.token_id,
                    session.credential_hash,
                    self._ts(session.created_at),
                    self._ts(session.expires_at),
                ),
            )

    def get_session(self, session_id: str) -> tuple[DashboardSession, str] | None:
        with self._read() as tx:
            rows = tx.execute(self._sql("session_with_secret"), (session_id,))
        return self._session_found(rows)

    def _session_found(self, rows: Sequence[Sequence[Any]]) -> tuple[DashboardSession, str] | None:
        """``get_session``'s answer from the rows of ``session_with_secret``."""
        if not rows:
            return None
        r = rows[0]
        created, expires = self._dt(r[3]), self._dt(r[4])
        assert created is not None and expires is not None  # NOT NULL columns
        session = DashboardSession(
            id=r[0],
            user=r[1],
            via=r[2],
            created_at=created,
            expires_at=expires,
            admin=bool(r[5]),
            read_only=bool(r[6]),
            token_id=r[7],
            credential_hash=r[8],
            token_revoked_at=self._dt(r[9]),
        )
        return session, str(r[10])

    def delete_session(self, session_id: str) -> None:
        with self._write() as tx:
            tx.execute(self._sql("delete_session"), (session_id,))
