"""The SQL store both dialects share, composed from one part per concern.

Where each decision lives:

- ``dialect.py``: one transaction (``Tx``), the hooks a dialect provides, shared statements
- ``codec.py``: the columns of each table and the only place rows become records
- ``named_sql.py`` and ``queries/``: statements kept as named SQL, with dialect variants
- ``schedules.py``: schedules added, changed, read, listed, deleted, paused
- ``schedule_cache.py``: schedules decoded ahead of their fire (read-ahead)
- ``firing.py``: due schedules become runs, one transaction per fire
- ``claiming.py``: which waiting runs a node takes (overlap rule from ``policy``)
- ``attempt_ends.py``: leases renewed, attempts ended, lost runs recovered
- ``runs.py``: runs, queues, stats, gauges and retention
- ``nodes.py``: nodes and the leader's lease
- ``migrate.py``: the schema, upgraded by one loop for both dialects
- ``sql_access.py``, ``sql_dashboard.py``, ``sql_stats.py``, ``sql_run_lines.py``,
  ``sql_user_settings.py``: tokens
  and audit, the dashboard's pages, statistics from the indexes, running attempts' lines,
  each user's display settings
"""

from __future__ import annotations

from tickwork.store.attempt_ends import AttemptEnds
from tickwork.store.base import Store
from tickwork.store.codec import (
    ATTEMPT_COLUMNS,
    CLAIMED_RUN_COLUMNS,
    NODE_COLUMNS,
    QUEUE_COLUMNS,
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    _aware,
    dumps,
    from_micros,
    from_micros_or_none,
    like_escaped,
    loads,
    micros,
    parse_json,
    utc,
    utc_schedule,
)
from tickwork.store.dialect import SqlCore, Tx
from tickwork.store.firing import Firing
from tickwork.store.migrate import Migrations, load_migrations
from tickwork.store.nodes import Nodes
from tickwork.store.runs import Runs, percentile
from tickwork.store.schedules import INSERT_SCHEDULE, Schedules, new_revision
from tickwork.store.sql_access import AccessSql
from tickwork.store.sql_dashboard import DashboardSql
from tickwork.store.sql_run_lines import RunLinesSql
from tickwork.store.sql_sessions import SessionsSql
from tickwork.store.sql_user_settings import UserSettingsSql

__all__ = [
    "ATTEMPT_COLUMNS",
    "CLAIMED_RUN_COLUMNS",
    "INSERT_SCHEDULE",
    "NODE_COLUMNS",
    "QUEUE_COLUMNS",
    "RUN_COLUMNS",
    "SCHEDULE_COLUMNS",
    "SqlCore",
    "SqlStore",
    "Tx",
    "_aware",
    "dumps",
    "from_micros",
    "from_micros_or_none",
    "like_escaped",
    "load_migrations",
    "loads",
    "micros",
    "new_revision",
    "parse_json",
    "percentile",
    "utc",
    "utc_schedule",
]


class SqlStore(
    Schedules,
    Firing,
    AttemptEnds,
    Runs,
    Nodes,
    Migrations,
    AccessSql,
    DashboardSql,
    RunLinesSql,
    SessionsSql,
    UserSettingsSql,
    Store,
):
    """``Store`` written once in SQL; subclasses provide the dialect."""
