"""Engine behaviour seen through the CLI that looks wrong; each test is the smallest
reproduction first, and now guard against their return."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_task_timeout_applies_to_a_schedule_created_from_the_cli(wcli: Cli) -> None:
    created = wcli.json(
        "create", "--task", "cli:short_timeout", "--schedule", "manual", "--id", "short-timeout"
    )
    assert created["timeout"] == 1


def test_a_manual_schedule_is_active(wcli: Cli) -> None:
    created = wcli.json("create", "--task", "cli:echo", "--schedule", "manual", "--id", "by-hand")
    assert created["status"] == "active"


def test_data_that_does_not_fit_the_task_is_refused_from_the_cli(wcli: Cli) -> None:
    message = wcli.error(
        "create", "--task", "cli:sleep", "--schedule", "manual", "--data", '{"bogus": 1}'
    )
    assert "bogus" in message
