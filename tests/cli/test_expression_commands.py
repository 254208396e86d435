"""``tickwork validate EXPR`` and ``tickwork next EXPR``: no database involved."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tickwork.cli.expression_commands  # noqa: F401  (registers validate and next)
from tickwork.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


class TestValidate:
    def test_cron(self) -> None:
        code, out, err = run("validate", "30 2 * * 1-5", "--tz", "Europe/Paris")
        assert code == 0, err
        assert "valid cron schedule: At 02:30, Monday through Friday (Europe/Paris)" in out
        times = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
        assert len(times) == 5
        for t in times:
            dt = datetime.fromisoformat(t)
            assert (dt.hour, dt.minute) == (2, 30) and dt.isoweekday() <= 5
            assert dt > datetime.now(UTC)

    def test_json(self) -> None:
        code, out, _ = run("--json", "validate", "*/5 * * * *")
        assert code == 0
        body = json.loads(out)
        assert body["valid"] is True
        assert body["kind"] == "cron"
        assert body["description"] == "Every 5 minutes"
        assert body["timezone"] == "UTC"
        assert len(body["next"]) == 5
        times = [datetime.fromisoformat(t) for t in body["next"]]
        assert all(t.utcoffset() is not None for t in times)
        assert all(b - a == times[1] - times[0] for a, b in itertools.pairwise(times))

    @pytest.mark.parametrize(
        ("expr", "kind"),
        [
            ("5m", "interval"),
            ("every 2 days", "interval"),
            ("PT15M", "interval"),
            ("in 10m", "once"),
            ("2999-12-25T09:00", "once"),
            ("@daily", "cron"),
            ("0 0 12 * * MON#2", "cron"),
        ],
    )
    def test_every_kind(self, expr: str, kind: str) -> None:
        code, out, err = run("--json", "validate", expr, "--tz", "America/New_York")
        assert code == 0, err
        body = json.loads(out)
        assert body["kind"] == kind and body["timezone"] == "America/New_York"
        assert body["next"]

    def test_what_fires_at_once_is_listed(self) -> None:
        # "now" and an interval (anchored now) fire as soon as they are added.
        before = datetime.now(UTC)
        code, out, err = run("--json", "validate", "now")
        assert code == 0, err
        (only,) = json.loads(out)["next"]
        assert before <= datetime.fromisoformat(only) <= datetime.now(UTC)
        code, out, err = run("--json", "next", "5m", "-n", "2")
        assert code == 0, err
        first, second = (datetime.fromisoformat(t) for t in json.loads(out))
        assert before <= first <= datetime.now(UTC) and second - first == timedelta(minutes=5)
        code, out, _ = run("validate", "now")
        assert "no fire time" not in out

    def test_manual(self) -> None:
        code, out, _ = run("validate", "manual")
        assert code == 0
        assert "never fires by itself" in out
        code, out, _ = run("--json", "validate", "manual")
        assert json.loads(out)["next"] == []

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["0 0 30 2 *"], "error: '0 0 30 2 *' never fires"),
            (["* * 32 * *"], "error: day-of-month 32 out of range 1-31"),
            (["0 0 * * *", "--tz", "Mars/Base"], "error: unknown time zone 'Mars/Base'"),
            (["5 minuets"], "error: unknown unit 'minuets'"),
            (["0s"], "must be longer than zero"),
        ],
    )
    def test_invalid_exits_1_with_the_message_on_stderr(
        self, args: list[str], message: str
    ) -> None:
        for prefix in ([], ["--json"]):
            code, out, err = run(*prefix, "validate", *args)
            assert code == 1
            assert out == ""
            assert message in err


class TestNext:
    def test_after_and_count(self) -> None:
        code, out, _ = run(
            "next", "0 9 * * *", "--tz", "Europe/Paris", "--after", "2024-03-30T12:00", "-n", "3"
        )
        assert code == 0
        assert [line.split()[0] for line in out.splitlines()] == [
            "2024-03-31T09:00:00+02:00",
            "2024-04-01T09:00:00+02:00",
            "2024-04-02T09:00:00+02:00",
        ]

    def test_json_is_an_array_of_iso_strings(self) -> None:
        code, out, _ = run(
            "--json", "next", "30 2 * * *", "--tz", "America/New_York",
            "--after", "2024-03-09T12:00:00-05:00", "--count", "2",
        )  # fmt: skip
        assert code == 0
        assert json.loads(out) == ["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"]

    def test_after_is_strict(self) -> None:
        code, out, _ = run("--json", "next", "0 * * * *", "--after", "2024-01-01T05:00:00Z")
        assert code == 0
        assert json.loads(out)[0] == "2024-01-01T06:00:00+00:00"

    def test_interval_is_anchored_at_after_or_start_at(self) -> None:
        code, out, _ = run("--json", "next", "5m", "--after", "2024-01-01T00:00:00Z", "-n", "2")
        assert code == 0
        assert json.loads(out) == ["2024-01-01T00:05:00+00:00", "2024-01-01T00:10:00+00:00"]
        code, out, _ = run(
            "--json", "next", "1mo", "--after", "2024-02-01T00:00:00Z",
            "--start-at", "2024-01-31T10:00:00Z", "-n", "2",
        )  # fmt: skip
        assert code == 0
        assert json.loads(out) == ["2024-02-29T10:00:00+00:00", "2024-03-31T10:00:00+00:00"]

    def test_default_after_is_now(self) -> None:
        before = datetime.now(UTC)
        code, out, _ = run("--json", "next", "* * * * * *", "-n", "1")
        assert code == 0
        t = datetime.fromisoformat(json.loads(out)[0])
        # Every second: the first whole second after the command's now, which lies
        # between the two readings here.
        assert before < t <= datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)

    def test_hashed_key(self) -> None:
        a = run("--json", "next", "H H * * *", "--key", "job-1", "--after", "2024-01-01T00:00Z")
        b = run("--json", "next", "H H * * *", "--key", "job-1", "--after", "2024-01-01T00:00Z")
        assert a == b and a[0] == 0

    def test_once_in_the_past_has_no_fire(self) -> None:
        code, out, _ = run("--json", "next", "2000-01-01T00:00Z")
        assert code == 0 and json.loads(out) == []
        code, out, _ = run("next", "2000-01-01T00:00Z")
        assert code == 0 and "no fire time" in out

    @pytest.mark.parametrize(
        ("args", "message", "exit_code"),
        [
            (["60 * * * *"], "minute 60 out of range 0-59", 1),
            # A value out of its range is a usage error, as --limit's is.
            (["* * * * *", "--count", "0"], "--count must be between 1 and 1000", 2),
            (["* * * * *", "--after", "yesterday"], "--after 'yesterday' is not an ISO-8601", 1),
            (["* * * * *", "--tz", "Nowhere/City"], "unknown time zone 'Nowhere/City'", 1),
        ],
    )
    def test_errors(self, args: list[str], message: str, exit_code: int) -> None:
        code, out, err = run("next", *args)
        assert code == exit_code and out == ""
        assert message in err

    def test_an_expression_and_a_stored_schedule_are_a_usage_error(self) -> None:
        code, out, err = run("next", "* * * * *", "--schedule", "abc")
        assert code == 2 and out == ""
        assert "give an expression or --schedule ID, not both" in err

    @pytest.mark.parametrize(
        ("args", "named"),
        [
            (["--tz", "Europe/Paris"], "--tz is"),
            (["--schedule", "daily", "--key", "abc"], "--key is"),
            (["--start-at", "2030-01-01", "--tz", "UTC"], "--tz, --start-at are"),
        ],
    )
    def test_without_expression_the_options_of_an_expression_are_refused(
        self, args: list[str], named: str
    ) -> None:
        """Before: silently ignored, the stored schedules' fires printed in their zones."""
        code, out, err = run("next", *args)
        assert code == 2 and out == ""
        assert f"error: {named} for an expression" in err

    def test_without_expression_asks_the_stored_schedules(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[tuple[str | None, int, str | None]] = []

        def fake(ctx: object, schedule_id: str | None, count: int, after: str | None) -> None:
            calls.append((schedule_id, count, after))

        monkeypatch.setattr("tickwork.cli.stored_next.next_for_stored_schedules", fake)
        assert run("next", "--schedule", "daily", "--count", "3")[0] == 0
        assert run("next", "--after", "2030-01-01T00:00")[0] == 0
        assert calls == [("daily", 3, None), (None, 5, "2030-01-01T00:00")]


@pytest.mark.parametrize("command", ["validate", "next"])
def test_an_expression_in_several_words_is_told_to_be_quoted(command: str) -> None:
    # The shell splits an unquoted cron expression into words (and expands its '*').
    code, out, err = run(command, "0", "9", "1", "1", "*")
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: EXPR is one argument: quote it, e.g. tickwork {command} '0 9 1 1 *'"
    )


def test_a_real_process() -> None:
    """The console script's entry function, in a real process (module imported first)."""
    code = (
        "import sys, tickwork.cli.expression_commands;"
        "from tickwork.cli.main import main; sys.argv[0] = 'tickwork'; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--json", "validate", "0 9 * * MON-FRI", "--tz", "Asia/Tokyo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["description"] == (
        "At 09:00, Monday through Friday (Asia/Tokyo)"
    )


def test_registered_by_the_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--json", "next", "@daily", "-n", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert datetime.fromisoformat(json.loads(proc.stdout)[0]).hour == 0
