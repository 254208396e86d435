"""``tickwork status`` says which schedules' fires are overdue, how late the oldest is,
and, plainly, when no node is alive to fire them: on a real SQLite file where no
engine runs, schedules stored with their next fire in the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.cli.conftest import Cli
from tests.store.conftest import make_schedule
from tickwork.models import Node
from tickwork.store import open_store


@pytest.fixture
def late(cli: Cli) -> Cli:
    """Two schedules overdue (by 2 h and 10 min), and three that are not: one due 20 s
    ago (within the grace), one paused, one due in an hour."""
    now = datetime.now(UTC)
    store = open_store(cli.db_url)
    try:
        for sid, ago, fields in [
            ("two-hours", timedelta(hours=2), {}),
            ("ten-minutes", timedelta(minutes=10), {}),
            ("just-now", timedelta(seconds=20), {}),
            ("paused", timedelta(hours=5), {"paused": True, "status": "paused"}),
            ("later", -timedelta(hours=1), {}),
        ]:
            store.add_schedule(make_schedule(sid, next_fire_at=now - ago, **fields))
    finally:
        store.close()
    return cli


def _overdue_line(cli: Cli, *args: str) -> str:
    lines = [
        line for line in cli("status", *args).stdout.splitlines() if line.startswith("overdue:")
    ]
    assert len(lines) == 1, lines
    return lines[0]


def test_overdue_fires_with_no_node_at_all(late: Cli) -> None:
    said = late("status").stdout
    assert "no node is running" in said
    assert _overdue_line(late) == (
        "overdue: 2 schedule(s) past their fire time by more than 1m 00s, the oldest by "
        "2h 00m; no node is alive to fire them: start one with 'tickwork worker --import "
        "MODULE'"
    )
    status = late.json("status")
    overdue = status["overdue"]
    assert overdue["schedules"] == 2 and overdue["grace"] == 60
    assert 7199 < overdue["oldest_seconds"] < 7260
    assert status["nodes_alive"] == []


def test_the_grace_is_an_option(late: Cli) -> None:
    assert _overdue_line(late, "--grace", "3600").startswith(
        "overdue: 1 schedule(s) past their fire time by more than 1h 00m, the oldest by 2h"
    )
    overdue = late.json("status", "--grace", "5")["overdue"]
    assert overdue["schedules"] == 3 and overdue["grace"] == 5
    assert late.json("status", "--grace", "36000")["overdue"]["schedules"] == 0
    assert "\noverdue:" not in late("status", "--grace", "36000").stdout


def test_a_node_listed_but_silent_is_not_alive(late: Cli) -> None:
    """A node killed without stopping stays listed until another node takes it for
    dead; its heartbeat says it fires nothing."""
    silent = datetime.now(UTC) - timedelta(minutes=5)
    store = open_store(late.db_url)
    try:
        store.register_node(Node("vm:1:gone", "elsewhere", 1, silent, silent))
    finally:
        store.close()
    said = late("status").stdout
    assert "no node is alive: none has renewed its heartbeat within its lease_ttl" in said
    assert _overdue_line(late).endswith(
        "no node is alive to fire them: start one with 'tickwork worker --import MODULE'"
    )
    status = late.json("status")
    assert [n["id"] for n in status["nodes"]] == ["vm:1:gone"]
    assert status["nodes_alive"] == []


def test_overdue_fires_beside_a_node_alive(late: Cli) -> None:
    now = datetime.now(UTC)
    store = open_store(late.db_url)
    try:
        store.register_node(Node("vm:1:up", "elsewhere", 1, now, now))
    finally:
        store.close()
    said = late("status").stdout
    assert "no node is alive" not in said
    assert _overdue_line(late).endswith(
        "the oldest by 2h 00m; the nodes alive are not firing them (behind, or stalled)"
    )
    assert late.json("status")["nodes_alive"] == ["vm:1:up"]


def test_each_node_is_alive_within_its_own_lease(late: Cli) -> None:
    """A worker started with ``--lease-ttl 5`` and silent for 10 s is not alive; one with
    ``--lease-ttl 120`` silent for 60 s is (both were judged by the default 30 s)."""
    now = datetime.now(UTC)
    store = open_store(late.db_url)
    try:
        store.register_node(Node("vm:1:short", "elsewhere", 1, now, now, lease_ttl=5.0))
        store.register_node(Node("vm:2:long", "elsewhere", 2, now, now, lease_ttl=120.0))
        store.heartbeat("vm:1:short", now - timedelta(seconds=10), now, [])
        store.heartbeat("vm:2:long", now - timedelta(seconds=60), now, [])
    finally:
        store.close()
    status = late.json("status")
    assert [(n["id"], n["lease_ttl"]) for n in status["nodes"]] == [
        ("vm:1:short", 5.0),
        ("vm:2:long", 120.0),
    ]
    assert status["nodes_alive"] == ["vm:2:long"]
    assert _overdue_line(late).endswith("the nodes alive are not firing them (behind, or stalled)")


def test_nothing_overdue_says_nothing(cli: Cli) -> None:
    assert "\noverdue:" not in cli("status").stdout
    assert cli.json("status")["overdue"] == {"schedules": 0, "oldest_seconds": 0.0, "grace": 60}
