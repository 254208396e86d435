"""``tickwork token create|list|revoke`` and ``tickwork audit``: who may call the REST
API, and what was changed by whom.

A token's secret is printed once, when it is made; the database keeps only its hash.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import NoReturn

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.main import app
from tickwork.cli.output import short, when
from tickwork.engine.tokens import parse_expiry
from tickwork.errors import ValidationError
from tickwork.models import ApiToken, AuditEntry
from tickwork.validation import parse_instant

token_app = typer.Typer(
    name="token",
    help="API tokens for the REST API and the dashboard (stored hashed; shown once).",
    no_args_is_help=True,
)
app.add_typer(token_app)


@token_app.command("create", help="Make a token and print its secret (this once only).")
def create(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="The user the token acts as."),
    admin: bool = typer.Option(
        False, "--admin", help="An admin token: sees and may do all (not with --read-only)."
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="May only read its user's schedules (not with --admin)."
    ),
    expires: str | None = typer.Option(
        None,
        "--expires",
        metavar="DURATION",
        help="Lifetime: 30d, 12h, 1w, PT1H... (months and years by the calendar; none: never).",
    ),
) -> None:
    out = globals_of(ctx).out
    if admin and read_only:
        out.fail(
            "give --admin or --read-only, not both: an admin token may change anything, "
            "a read-only one nothing",
            code=2,
        )
    try:
        lifetime = None if expires is None else parse_expiry(expires, datetime.now(UTC))
    except ValidationError as exc:
        out.fail(f"--{exc}")
    made = with_client(
        ctx,
        lambda s: s.create_token(user, admin=admin, read_only=read_only, expires_in=lifetime),
        creates=True,
    )
    assert made is not None
    token, secret = made
    try:
        if out.json:
            out.emit_json({**token.to_dict(), "token": secret})
            return
        out.line(secret)
    except OSError as exc:
        _revoke_unshown(ctx, token, exc)
    expiry = f", expires {when(token.expires_at)}" if token.expires_at else ""
    typer.echo(
        f"token {token.id} for {token.user} ({token.role}{expiry}); the secret above is "
        "shown this once: use it as 'Authorization: Bearer <token>'",
        err=True,
    )


def _revoke_unshown(ctx: typer.Context, token: ApiToken, exc: OSError) -> NoReturn:
    """The secret could not be written (a full disk, a closed pipe): no one can ever
    use the token, so it is revoked rather than left in force, and the error says so."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # what stdout still holds is lost
    with_client(ctx, lambda s: s.revoke_token(token.id))
    globals_of(ctx).out.fail(
        f"cannot print the token's secret ({exc.strerror or exc}): token {token.id} was "
        "revoked, since no one could use it; make another"
    )


@token_app.command("list", help="Tokens: id, user, role, created, last used, expiry.")
def list_tokens(
    ctx: typer.Context,
    revoked: bool = typer.Option(
        False, "--revoked", help="Include revoked tokens (on the database: not with --url)."
    ),
) -> None:
    out = globals_of(ctx).out
    tokens: list[ApiToken] = with_client(ctx, lambda s: s.list_tokens(include_revoked=revoked))
    if out.json:
        out.emit_json([t.to_dict() for t in tokens])
        return
    if not tokens:
        out.line("no tokens")
        return
    out.table(
        ["id", "user", "role", "created", "last used", "expires"]
        + (["revoked"] if revoked else []),
        [
            [
                t.id,
                t.user,
                t.role,
                when(t.created_at),
                when(t.last_used_at) if t.last_used_at else "never",
                when(t.expires_at) if t.expires_at else "never",
            ]
            + ([when(t.revoked_at) if t.revoked_at else ""] if revoked else [])
            for t in tokens
        ],
    )


@token_app.command("revoke", help="Revoke a token: refused from the next request on.")
def revoke(
    ctx: typer.Context,
    token_id: str = typer.Argument(..., metavar="ID", help="The token's id (token list)."),
) -> None:
    out = globals_of(ctx).out
    token: ApiToken = with_client(ctx, lambda s: s.revoke_token(token_id))
    if out.json:
        out.emit_json(token.to_dict())
        return
    out.line(f"token {token.id} ({token.user}) revoked")


@app.command(
    "audit",
    help="The audit log, newest first: every change, who made it (API user, cli:USER, "
    "python:USER), before and after, and why.",
)
def audit(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor", help="Only changes by this actor."),
    target: str | None = typer.Option(
        None,
        "--target",
        help="Only changes of this record: schedule:ID, run:ID, token:ID, or an id.",
    ),
    since: str | None = typer.Option(None, "--since", metavar="ISO", help="Only since then."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many."),
) -> None:
    out = globals_of(ctx).out
    out.refuse_blank(("--actor", actor), ("--target", target))
    try:
        start: datetime | None = None if since is None else parse_instant(since, "--since")
    except ValidationError as exc:
        out.fail(str(exc))
    entries: list[AuditEntry] = with_client(
        ctx, lambda s: s.audit_log(actor=actor, target=target, since=start, limit=limit)
    )
    if out.json:
        out.emit_json([e.to_dict() for e in entries])
        return
    if not entries:
        out.line("no changes recorded")
        return
    out.table(
        ["at", "actor", "action", "target", "reason", "change"],
        [
            [when(e.at), e.actor, e.action, e.target, e.reason or "", short(_change(e), 70)]
            for e in entries
        ],
    )


def _change(e: AuditEntry) -> str:
    """The fields that differ between before and after, for a table cell."""
    if isinstance(e.before, dict) and isinstance(e.after, dict):
        keys = sorted(k for k in e.after if e.before.get(k) != e.after.get(k))
        skip = {"updated_at", "version", "next_fire_at", "paused_at"}
        shown = [f"{k}={e.after[k]!r}" for k in keys if k not in skip]
        return ", ".join(shown) or "-"
    if isinstance(e.after, dict) and e.before is None:
        if "runs" in e.after:
            return f"{len(e.after['runs'])} run(s)"
        return "created"
    return "deleted" if e.after is None else "-"
