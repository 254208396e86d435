"""Whose a run is: the condition that scopes run reads to one user.

A user reads the runs of their own schedules. A schedule's runs outlive it (history is
kept), but its row, which says whose it is, does not: its delete records the owner in
``deleted_schedules`` (migration 0023) instead, a row per deletion, written with the
delete and never on a run's way. A run is the owner's its schedule had when the run
was made: that of the first deletion of its schedule id at or after the run's
``created_at``, else that of the schedule's row, else that of the id's last deletion
(a run a node stamped a moment after the delete, its clock ahead). So an id deleted
and taken again by another user splits its history between the two.

Queue messages follow the same rule, by the time each was written (their own
``created_at``): a message outlives its schedule until it is read, and is its owner's,
not that of whoever takes the id next. It costs the message's write nothing; retention
keeps a deletion's row while a run or an unread message of its id is left.

Each dialect states the rule in the shape its planner serves best; each takes the user
as its only parameter, repeated (``owned_params``), and reads runs (or queue messages)
aliased ``r``: any table with ``schedule_id`` and ``created_at`` columns.
"""

from __future__ import annotations

from typing import Final

#: SQLite: the ids the user has or had drive the read (one seek of ``runs_schedule``
#: each); a run of an id never deleted, the common case, is settled by one probe of a
#: small index, the rule's lookups made only for runs of an id that was deleted.
_SQLITE: Final = (
    "(r.schedule_id IN (SELECT id FROM schedules WHERE owner = ?"
    " UNION ALL SELECT schedule_id FROM deleted_schedules WHERE owner = ?)"
    " AND (r.schedule_id NOT IN (SELECT schedule_id FROM deleted_schedules)"
    " OR COALESCE("
    "(SELECT COALESCE(d.owner, '') FROM deleted_schedules d"
    " WHERE d.schedule_id = r.schedule_id AND d.deleted_at >= r.created_at"
    " ORDER BY d.deleted_at, d.id LIMIT 1),"
    " (SELECT COALESCE(s.owner, '') FROM schedules s WHERE s.id = r.schedule_id),"
    " (SELECT COALESCE(d.owner, '') FROM deleted_schedules d"
    " WHERE d.schedule_id = r.schedule_id ORDER BY d.deleted_at DESC, d.id DESC LIMIT 1)"
    ") = ?))"
)

#: PostgreSQL: the ids the user has or had, as before deletions counted, then the same
#: rule as the spans of ``created_at`` that are the user's, one row per id (or per
#: deletion of an id that was deleted), which a run matches in a semi-join. (Stated as
#: for SQLite, the per-run lookups made the planner expect a cost high enough to give
#: up the hash join and compile the query: 0.1 s became 1 s for a user's 200,000 runs;
#: the spans alone, it scanned every run for a user who has few.)
_POSTGRES: Final = (
    "r.schedule_id IN (SELECT id FROM schedules WHERE owner = ?"
    " UNION ALL SELECT schedule_id FROM deleted_schedules WHERE owner = ?)"
    " AND EXISTS (SELECT 1 FROM ("
    # Schedules of the user whose id was never deleted: every run of theirs.
    "SELECT id AS sid, NULL::timestamptz AS since, NULL::timestamptz AS until"
    " FROM schedules WHERE owner = ? AND id NOT IN (SELECT schedule_id FROM deleted_schedules)"
    # Each deletion of the user's: the runs made after the deletion before it, up to it
    # (or on, when it was the id's last and nothing has the id now).
    " UNION ALL SELECT d.schedule_id, (SELECT MAX(p.deleted_at) FROM deleted_schedules p"
    " WHERE p.schedule_id = d.schedule_id AND p.deleted_at < d.deleted_at),"
    " CASE WHEN EXISTS (SELECT 1 FROM deleted_schedules n"
    " WHERE n.schedule_id = d.schedule_id AND n.deleted_at > d.deleted_at)"
    " OR EXISTS (SELECT 1 FROM schedules c WHERE c.id = d.schedule_id)"
    " THEN d.deleted_at END"
    " FROM deleted_schedules d WHERE d.owner = ?"
    # A schedule of the user on an id deleted before: the runs made since.
    " UNION ALL SELECT s.id, (SELECT MAX(p.deleted_at) FROM deleted_schedules p"
    " WHERE p.schedule_id = s.id), NULL"
    " FROM schedules s WHERE s.owner = ? AND s.id IN (SELECT schedule_id FROM deleted_schedules)"
    ") o WHERE o.sid = r.schedule_id AND (o.since IS NULL OR r.created_at > o.since)"
    " AND (o.until IS NULL OR r.created_at <= o.until))"
)
_PARAMS: Final = {"postgres": _POSTGRES.count("?"), "sqlite": _SQLITE.count("?")}

#: PostgreSQL, for a page of a queue's messages: the SQLite form, its first test made
#: opaque to the planner (``IS TRUE``: a hashed subplan, not a semi-join), so the page
#: is read in id order and stops at its limit, the rule's lookups made only for
#: messages of a deleted id. (With the spans of ``_POSTGRES`` it joined and sorted the
#: whole queue: 2 ms became 0.1 s for the first page of 200,000 messages; as a
#: semi-join the planner expected few rows, compiled the query (JIT) and ran the
#: lookups first: 0.7 s for a user with no message in such a queue.)
_MESSAGES_POSTGRES: Final = "((" + _SQLITE[1:].replace(
    " AND (r.schedule_id NOT IN", ") IS TRUE AND (r.schedule_id NOT IN", 1
)


def owned(dialect: str) -> str:
    """The condition, for runs aliased ``r``, that a run is the user's, in ``dialect``."""
    return _POSTGRES if dialect == "postgres" else _SQLITE


def owned_params(user: str, dialect: str) -> tuple[str, ...]:
    """The parameters of ``owned(dialect)`` for one user."""
    return (user,) * _PARAMS["postgres" if dialect == "postgres" else "sqlite"]


def owned_messages(dialect: str) -> str:
    """The condition, for queue messages aliased ``r``, that a message is the user's,
    in ``dialect`` (the rule runs follow, by the time the message was written)."""
    return _MESSAGES_POSTGRES if dialect == "postgres" else _SQLITE


def owned_message_params(user: str) -> tuple[str, ...]:
    """The parameters of ``owned_messages``, either dialect's, for one user."""
    return (user,) * _PARAMS["sqlite"]
