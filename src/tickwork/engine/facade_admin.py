"""The facade's administration calls: queues, statistics and counts, nodes, cleanup
and migrations, API tokens, the audit log, and the dashboard's summaries."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from tickwork.engine import tokens
from tickwork.engine.facade import SchedulerBase
from tickwork.errors import StoreError, ValidationError
from tickwork.limits import check_text
from tickwork.models import (
    ApiToken,
    AuditEntry,
    DashboardSession,
    Node,
    QueueMessage,
    Schedule,
    ScheduleStatus,
)
from tickwork.store.records import ScheduleFilter
from tickwork.validation import integer, parse_instant

log = logging.getLogger("tickwork")

#: A token's ``last_used_at`` is written at most this often (a write per request would
#: make every read a write).
TOKEN_TOUCH_EVERY: Final = 60.0
#: Seconds past its time a fire not made counts as overdue (``overdue_fires``): the
#: default ``misfire_grace`` is 30 s, a node fires in well under a second.
OVERDUE_GRACE: Final = 60.0


class AdminCalls(SchedulerBase):
    """Queues, stats, nodes, tokens, audit and the dashboard's summaries."""

    async def read_queue(
        self,
        name: str,
        consume: bool = True,
        limit: int = 100,
        *,
        owner: str | None = None,
        after: int = 0,
    ) -> list[QueueMessage]:
        """Messages of a queue, oldest first (``owner``: only those written while their
        schedule was that user's; ``after``: only those with a greater id, where a
        previous read ended); ``consume``: removed as they are read."""
        if not isinstance(name, str) or not name:
            raise ValidationError("name must be the name of a queue", field="name")
        if not isinstance(consume, bool):
            raise ValidationError("consume must be True or False", field="consume")
        integer(limit, "limit", minimum=1, maximum=10_000)
        integer(after, "after", minimum=0, maximum=2**63 - 1)
        return await self._call(
            self.store.read_queue, name, consume=consume, limit=limit, owner=owner, after=after
        )

    async def stats(
        self, since: datetime | str | None = None, *, owner: str | None = None
    ) -> dict[str, Any]:
        """Per-task run counts, success rate and p50/p95 duration; runs per status.
        ``since`` (a datetime or ISO-8601 string, naive = UTC): of runs scheduled since
        then. ``owner``: over that user's schedules only."""
        start = parse_instant(since, "since")
        tasks, runs = await self._call(self.store.run_stats, self.clock.now(), start, owner)
        schedules = await self.schedule_counts(owner=owner)
        return {"tasks": [t.to_dict() for t in tasks], "runs": runs, "schedules": schedules}

    async def active_runs(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        """Runs pending, running, retrying and due (``backlog``), and the running runs'
        ids by node: what ``tickwork status`` shows, from indexes only."""
        return await self._call(self.store.active_runs, self.clock.now())

    async def counts(self, *, owner: str | None = None) -> dict[str, Any]:
        """Runs per status (with ``backlog``: waiting and due) and schedules per status:
        the part of ``stats`` that does not read every run's duration."""
        runs = await self._call(self.store.count_runs, self.clock.now(), owner)
        return {"runs": runs, "schedules": await self.schedule_counts(owner=owner)}

    async def schedule_counts(self, *, owner: str | None = None) -> dict[str, int]:
        """Schedules per status (those with any)."""
        counts = await self._call(self.store.count_schedules, owner)
        return {k: v for k, v in counts.items() if v}

    async def overdue_fires(self, grace: float = OVERDUE_GRACE) -> tuple[int, float]:
        """Active schedules whose next fire is more than ``grace`` seconds past, and how
        many seconds past the oldest is (0.0 when none): fires no node made, because
        none is alive or the firing is behind (what ``tickwork status`` says)."""
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise ValidationError(f"grace must be seconds >= 0, not {grace!r}", field="grace")
        now = self.clock.now()
        count, oldest = await self._call(self.store.overdue_fires, now - timedelta(seconds=grace))
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        return count, age

    async def nodes(self, include_stopped: bool = False) -> list[Node]:
        """Known nodes (running; with ``include_stopped`` also stopped ones), with how
        many runs each has running and which one leads."""
        return await self._call(self.store.list_nodes, include_stopped=include_stopped)

    async def cleanup(self, older_than_days: float | None = None) -> int:
        """Delete finished runs older than ``older_than_days`` (default
        ``retention_days``); returns how many."""
        days = self._config.retention_days if older_than_days is None else older_than_days
        if isinstance(days, bool) or not isinstance(days, int | float) or not days >= 0:
            raise ValidationError(
                f"older_than_days must be a number of days >= 0, not {days!r}",
                field="older_than_days",
            )
        now = self.clock.now()
        try:
            cutoff = now - timedelta(days=days)
        except OverflowError:  # further back than the calendar: nothing is that old
            return 0
        return await self._call(self.store.delete_runs_before, cutoff)

    async def upgrade(self) -> list[int]:
        """Apply pending migrations; returns the versions applied, those the opening of
        this scheduler's store applied included (opening migrates), reported once."""
        applied = await self._call(self.store.upgrade)
        opened, self.store.migrated_on_open = self.store.migrated_on_open, ()
        return [*opened, *applied]

    # -- tokens and audit ----------------------------------------------------------------

    async def create_token(
        self,
        user: str,
        *,
        admin: bool = False,
        read_only: bool = False,
        expires_in: timedelta | None = None,
        only_if_none: bool = False,
    ) -> tuple[ApiToken, str] | None:
        """Make an API token; returns it with its secret, which is shown once and never
        stored. ``only_if_none``: only when no token exists (None otherwise)."""
        if not isinstance(user, str) or not user.strip() or len(user) > 200:
            raise ValidationError("user must be a non-empty name", field="user")
        check_text(user, "user")  # a NUL or a lone surrogate no database can keep
        if admin and read_only:
            # The roles exclude each other: such a token would be listed as an admin
            # while refused every change.
            raise ValidationError(
                "a token is admin or read-only, not both: admin and read_only were both set",
                field="read_only",
            )
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValidationError("expiry must be in the future", field="expires")
        now = self.clock.now()
        try:
            expires_at = None if expires_in is None else now + expires_in
        except OverflowError:
            raise ValidationError(
                "expiry is too far in the future (past the year 9999)", field="expires"
            ) from None
        token_id, secret = tokens.new_token()
        token = ApiToken(
            id=token_id,
            user=user.strip(),
            created_at=now,
            admin=admin,
            read_only=read_only,
            expires_at=expires_at,
        )
        audit = self._audit("token.created", f"token:{token_id}")
        if only_if_none:
            made = await self._call(
                self.store.create_first_token, token, tokens.token_hash(secret), audit
            )
            return (token, secret) if made else None
        await self._call(self.store.create_token, token, tokens.token_hash(secret), audit)
        return token, secret

    async def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        return await self._call(self.store.list_tokens, include_revoked=include_revoked)

    async def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token; it is refused from the next request on."""
        audit = self._audit("token.revoked", f"token:{token_id}")
        return await self._call(self.store.revoke_token, token_id, self.clock.now(), audit)

    async def check_token(self, secret: str) -> ApiToken | None:
        """The token whose secret this is, if it is usable now (not revoked, not
        expired); None otherwise. Records its use (at most once a minute).

        The token's row is read at every check, so a revocation by any process takes
        effect at the next request; on a store whose reads never wait (SQLite) on this
        thread, on one that reads over the network without a thread (PostgreSQL)
        awaited on this loop: one indexed read costs less than the hop to a store
        thread."""
        token_id = tokens.token_id_of(secret)
        if token_id is None:
            return None
        store = self.store
        if store.reads_inline:
            found = store.get_token(token_id)
        elif store.reads_async():
            found = await store.get_token_async(token_id)
        else:
            found = await self._call(store.get_token, token_id)
        if found is None:
            return None
        token, stored_hash = found
        if not tokens.same_secret(tokens.token_hash(secret), stored_hash):
            return None
        now = self.clock.now()
        if not token.usable(now):
            return None
        await self._touch_token(token.id, now)
        return token

    async def _touch_token(self, token_id: str, now: datetime) -> None:
        """Record the token's use, at most once a minute per process."""
        clock = time.monotonic()
        if clock - self._touched.get(token_id, -TOKEN_TOUCH_EVERY) >= TOKEN_TOUCH_EVERY:
            self._touched[token_id] = clock
            try:
                await self._call(self.store.touch_token, token_id, now)
            except StoreError as exc:  # a busy database must not refuse the request
                log.warning("could not record the use of token %s: %s", token_id, exc)

    # -- dashboard sign-ins ------------------------------------------------------------

    async def start_session(
        self,
        user: str,
        *,
        via: Literal["token", "admin", "jwt"],
        lifetime: timedelta,
        admin: bool = False,
        read_only: bool = False,
        token_id: str | None = None,
        server_credential: str | None = None,
        credential_expires_at: datetime | None = None,
    ) -> tuple[DashboardSession, str]:
        """Store a dashboard sign-in of ``user`` (made with a credential already
        checked) and return it with its secret, for the session cookie only. It lasts
        ``lifetime``, or until the credential expires when that comes first.

        ``server_credential``: what the server checked the credential against (its
        admin token, its JWT keys), kept as ``tokens.bound_hash`` under the session's
        secret, so a later check can tell it changed and a copy of the database gives
        nothing to guess it from."""
        now = self.clock.now()
        expires_at = now + lifetime
        if credential_expires_at is not None:
            expires_at = min(expires_at, credential_expires_at)
        session_id, secret = tokens.new_session()
        session = DashboardSession(
            id=session_id,
            user=user,
            via=via,
            created_at=now,
            expires_at=expires_at,
            admin=admin,
            read_only=read_only,
            token_id=token_id,
            credential_hash=(
                None if server_credential is None else tokens.bound_hash(secret, server_credential)
            ),
        )
        await self._call(self.store.create_session, session, tokens.token_hash(secret), now)
        return session, secret

    async def check_session(self, secret: str) -> DashboardSession | None:
        """The sign-in whose secret this is, if it is usable now (not signed out, not
        expired, its API token not revoked); None otherwise. Read at every request, as
        ``check_token`` reads a token, so a sign-out on any node counts at once."""
        found = await self._session_of(secret)
        if found is None or not found.usable(self.clock.now()):
            return None
        if found.token_id is not None:
            await self._touch_token(found.token_id, self.clock.now())
        return found

    async def end_session(self, secret: str) -> None:
        """Sign out: the sign-in whose secret this is is deleted, so no node accepts
        it again. Nothing happens for a secret that is no sign-in's."""
        found = await self._session_of(secret)
        if found is not None:
            await self._call(self.store.delete_session, found.id)

    async def _session_of(self, secret: str) -> DashboardSession | None:
        session_id = tokens.session_id_of(secret)
        if session_id is None:
            return None
        store = self.store
        if store.reads_inline:
            found = store.get_session(session_id)
        elif store.reads_async():
            found = await store.get_session_async(session_id)
        else:
            found = await self._call(store.get_session, session_id)
        if found is None:
            return None
        session, stored_hash = found
        if not tokens.same_secret(tokens.token_hash(secret), stored_hash):
            return None
        return session

    async def audit_log(
        self,
        *,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first. ``target`` is ``kind:id`` (``schedule:daily``)
        or a bare id, which matches any kind."""
        integer(limit, "limit", minimum=1, maximum=10_000)
        return await self._call(
            self.store.list_audit,
            actor=actor,
            target=target,
            since=parse_instant(since, "since"),
            before_id=before_id,
            limit=limit,
        )

    # -- the dashboard's summaries -------------------------------------------------------

    async def schedule_page(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Schedule], int]:
        """One page of the matching schedules in ``sort`` order, and how many match."""
        filters = ScheduleFilter(status=status, task=task, tag=tag, owner=owner, q=q)
        return await self._call(
            self.store.schedule_page,
            filters,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )

    async def schedule_ids(
        self,
        *,
        status: ScheduleStatus | None = None,
        task: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        q: str | None = None,
    ) -> list[str]:
        """The ids of every schedule matching the filters."""
        filters = ScheduleFilter(status=status, task=task, tag=tag, owner=owner, q=q)
        return await self._call(self.store.schedule_ids, filters)

    async def count_schedules(self, owner: str | None = None) -> dict[str, int]:
        """Schedules per status."""
        return await self._call(self.store.count_schedules, owner)

    async def run_activity(
        self, since: datetime, bucket_seconds: int, owner: str | None = None
    ) -> list[tuple[int, str, int, float | None, float | None]]:
        """Runs since ``since`` per time bucket and status, with mean and max durations."""
        return await self._call(self.store.run_activity, since, bucket_seconds, owner)

    async def recent_runs(
        self, schedule_ids: Sequence[str], per_schedule: int = 20, owner: str | None = None
    ) -> dict[str, list[tuple[str, str, datetime]]]:
        """The newest runs of each schedule as (id, status, scheduled_for), oldest first."""
        return await self._call(self.store.recent_runs, schedule_ids, per_schedule, owner)
