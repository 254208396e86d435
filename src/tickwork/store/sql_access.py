"""The SQL of who may do what and what they did: API tokens, the audit log and the
idempotency keys of manual runs (both dialects).

``SqlStore`` inherits this; ``_audit_tx`` is how every changing transaction of the
store writes its audit entry in the same transaction as the change.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from tickwork.errors import ConflictError, NotFoundError
from tickwork.models import ApiToken, AuditEntry, Run, Schedule
from tickwork.store.named_sql import fill
from tickwork.store.named_sql import where as named_where
from tickwork.store.sql_hooks import SqlHooks

if TYPE_CHECKING:
    from tickwork.store.sql import Tx

#: The filters of ``list_audit``, each a condition with one parameter.
_AUDIT_FILTERS: Final = ("actor = ?", "target = ?", "at >= ?", "id < ?")


class AccessSql(SqlHooks):
    """Tokens, audit and idempotency keys, written once in SQL (a mixin of ``SqlStore``)."""

    @abstractmethod
    def _run_row(self, r: Run) -> tuple[Any, ...]: ...

    @abstractmethod
    def _insert_run_rows(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]: ...

    @abstractmethod
    def _notify_tx(self, tx: Tx) -> None: ...

    @abstractmethod
    def get_run(self, run_id: str, owner: str | None = None) -> Run | None: ...

    # -- audit -----------------------------------------------------------------------

    def _audit_row(self, e: AuditEntry) -> tuple[Any, ...]:
        from tickwork.store.sql import dumps

        return (
            self._ts(e.at),
            e.actor,
            e.action,
            e.target,
            None if e.before is None else dumps(e.before, "before"),
            None if e.after is None else dumps(e.after, "after"),
            e.reason,
        )

    def _audit_tx(self, tx: Tx, entries: Sequence[AuditEntry]) -> None:
        """Write audit entries in the caller's transaction (so they commit with the change)."""
        if entries:
            tx.executemany(self._sql("insert_audit"), [self._audit_row(e) for e in entries])

    def record_audit(self, entry: AuditEntry) -> None:
        with self._write() as tx:
            self._audit_tx(tx, [entry])

    def list_audit(
        self,
        *,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        from tickwork.store.sql import loads

        where: list[str] = []
        params: list[Any] = []
        if target is not None and ":" not in target:
            from tickwork.store.sql import like_escaped

            where.append("target LIKE ? ESCAPE '\\'")
            params.append("%:" + like_escaped(target))
            target = None
        values = (actor, target, None if since is None else self._ts(since), before_id)
        for cond, value in zip(_AUDIT_FILTERS, values, strict=True):
            if value is not None:
                where.append(cond)
                params.append(value)
        sql = fill(self._sql("list_audit"), where=named_where(where))
        params.append(max(0, int(limit)))
        with self._read() as tx:
            rows = tx.execute(sql, params)
        entries = []
        for id_, at, actor_, action, target_, before, after, reason in rows:
            when = self._dt(at)
            assert when is not None
            entries.append(
                AuditEntry(
                    id=int(id_),
                    at=when,
                    actor=actor_,
                    action=action,
                    target=target_,
                    before=loads(before),
                    after=loads(after),
                    reason=reason,
                )
            )
        return entries

    def _delete_access_before(self, tx: Tx, cutoff: Any) -> None:
        """Retention: audit entries and idempotency keys older than ``cutoff``."""
        tx.execute(self._sql("delete_audit_before"), (cutoff,))
        tx.execute(self._sql("delete_idempotency_keys_before"), (cutoff,))

    # -- tokens ----------------------------------------------------------------------

    def _api_token(self, row: Sequence[Any]) -> ApiToken:
        created = self._dt(row[2])
        assert created is not None
        return ApiToken(
            id=row[0],
            user=row[1],
            created_at=created,
            admin=bool(row[3]),
            read_only=bool(row[4]),
            expires_at=self._dt(row[5]),
            last_used_at=self._dt(row[6]),
            revoked_at=self._dt(row[7]),
        )

    def _token_params(self, token: ApiToken, secret_hash: str) -> tuple[Any, ...]:
        return (
            token.id,
            secret_hash,
            token.user,
            token.admin,
            token.read_only,
            self._ts(token.created_at),
            self._ts(token.expires_at),
        )

    def create_token(self, token: ApiToken, secret_hash: str, audit: AuditEntry | None) -> None:
        with self._write() as tx:
            tx.execute(self._sql("insert_token"), self._token_params(token, secret_hash))
            if audit is not None:
                self._audit_tx(tx, [dataclasses.replace(audit, after=token.to_dict())])

    def create_first_token(
        self, token: ApiToken, secret_hash: str, audit: AuditEntry | None
    ) -> bool:
        with self._write() as tx:
            # PostgreSQL: two first starts at once; the table lock makes one of them see
            # the other's token (SQLite's write transaction is exclusive already).
            tx.execute(self._sql("lock_tokens"))
            if tx.execute(self._sql("any_token")):
                return False
            tx.execute(self._sql("insert_token"), self._token_params(token, secret_hash))
            if audit is not None:
                self._audit_tx(tx, [dataclasses.replace(audit, after=token.to_dict())])
        return True

    def get_token(self, token_id: str) -> tuple[ApiToken, str] | None:
        with self._read() as tx:
            rows = tx.execute(self._sql("token_with_secret"), (token_id,))
        return self._token_found(rows)

    def _token_found(self, rows: Sequence[Sequence[Any]]) -> tuple[ApiToken, str] | None:
        """``get_token``'s answer from the rows of ``token_with_secret``."""
        return (self._api_token(rows[0]), str(rows[0][8])) if rows else None

    def touch_token(self, token_id: str, now: datetime) -> None:
        with self._write() as tx:
            tx.execute(self._sql("touch_token"), (self._ts(now), token_id))

    def list_tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        listed = "list_tokens" if include_revoked else "list_live_tokens"
        with self._read() as tx:
            rows = tx.execute(self._sql(listed))
        return [self._api_token(r) for r in rows]

    def revoke_token(self, token_id: str, now: datetime, audit: AuditEntry | None) -> ApiToken:
        with self._write() as tx:
            rows = tx.execute(self._sql("token_locked"), (token_id,))
            if not rows:
                raise NotFoundError("token", token_id)
            before = self._api_token(rows[0])
            if before.revoked_at is not None:
                raise ConflictError(f"token {token_id!r} is already revoked")
            tx.execute(self._sql("revoke_token"), (self._ts(now), token_id))
            after = dataclasses.replace(before, revoked_at=now)
            if audit is not None:
                self._audit_tx(
                    tx,
                    [dataclasses.replace(audit, before=before.to_dict(), after=after.to_dict())],
                )
        return after

    # -- idempotent manual runs ------------------------------------------------------

    def insert_run_once(
        self,
        schedule: Schedule,
        run: Run,
        key: tuple[str, str],
        window_start: datetime,
        audit: AuditEntry | None = None,
    ) -> tuple[Run, bool]:
        scope, value = key
        existing: str | None = None
        with self._write() as tx:
            rows = tx.execute(self._sql("idempotency_key_locked"), (scope, value))
            created = self._dt(rows[0][2]) if rows else None
            if created is not None and created >= window_start:
                if rows[0][0] != schedule.id:
                    raise ConflictError(
                        f"Idempotency-Key {value!r} was used for another schedule"
                        " in the last 24 hours"
                    )
                existing = str(rows[0][1])
            else:
                if rows:  # older than the window: the key is free again
                    tx.execute(self._sql("delete_idempotency_key"), (scope, value))
                self._insert_run_rows(tx, [self._run_row(run)])
                tx.execute(
                    self._sql("insert_idempotency_key"),
                    (scope, value, schedule.id, run.id, self._ts(run.created_at)),
                )
                if audit is not None:
                    self._audit_tx(tx, [dataclasses.replace(audit, after={"runs": [run.id]})])
                self._notify_tx(tx)
        if existing is None:
            return run, True
        found = self.get_run(existing)
        if found is None:  # deleted by retention since: the key is as good as spent
            raise ConflictError(f"the run of Idempotency-Key {value!r} no longer exists")
        return found, False
