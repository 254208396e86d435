"""What only an admin may do: pause or resume every schedule, read the audit log and
manage API tokens. The rules of who is an admin and who may write are in
``tickwork.api.access``; these calls apply them before each change, made ``acting_as``
the caller so the audit log names them."""

from __future__ import annotations

from datetime import datetime, timedelta

from tickwork.api.access import require_admin, require_write
from tickwork.api.auth import Caller
from tickwork.engine.audit import acting_as
from tickwork.engine.scheduler import Scheduler
from tickwork.models import ApiToken, AuditEntry


async def pause_all(scheduler: Scheduler, caller: Caller, reason: str | None = None) -> list[str]:
    require_admin(caller)
    require_write(caller)
    with acting_as(caller.user, reason):
        return [s.id for s in await scheduler.pause()]


async def resume_all(scheduler: Scheduler, caller: Caller, reason: str | None = None) -> list[str]:
    require_admin(caller)
    require_write(caller)
    with acting_as(caller.user, reason):
        return [s.id for s in await scheduler.resume()]


async def audit_log(
    scheduler: Scheduler,
    caller: Caller,
    *,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    require_admin(caller)
    return await scheduler.audit_log(
        actor=actor, target=target, since=since, before_id=before_id, limit=limit
    )


async def create_token(
    scheduler: Scheduler,
    caller: Caller,
    user: str,
    *,
    admin: bool = False,
    read_only: bool = False,
    expires_in: timedelta | None = None,
) -> tuple[ApiToken, str]:
    require_admin(caller)
    require_write(caller)
    with acting_as(caller.user):
        made = await scheduler.create_token(
            user, admin=admin, read_only=read_only, expires_in=expires_in
        )
    assert made is not None
    return made


async def list_tokens(scheduler: Scheduler, caller: Caller) -> list[ApiToken]:
    require_admin(caller)
    return await scheduler.list_tokens()


async def revoke_token(scheduler: Scheduler, caller: Caller, token_id: str) -> ApiToken:
    require_admin(caller)
    require_write(caller)
    with acting_as(caller.user):
        return await scheduler.revoke_token(token_id)
