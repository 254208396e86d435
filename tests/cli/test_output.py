"""How the CLI writes times, durations and other people's text for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from tickwork.cli.output import Output, relative, seconds, short, when

#: Text a task or a user may store: a colour, a screen clear, a window title (OSC) and a
#: carriage return that would overwrite what came before it on the line.
HOSTILE = "\x1b[31mred\x1b[0m \x1b[2J\x1b]0;pwned\x07\rOVER\x9b1m"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0.0123, "0.012 s"),
        (3.46, "3.5 s"),
        (42, "42 s"),
        (125, "2m 05s"),
        (3720, "1h 02m"),
        (2 * 86400 + 3 * 3600 + 59, "2d 03h"),
    ],
)
def test_seconds(value: float | None, text: str) -> None:
    assert seconds(value) == text


def test_when_uses_the_given_zone_with_its_offset() -> None:
    t = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert when(t, "Europe/Paris") == "2026-07-01 09:00:00+02:00"
    assert when(t, "UTC") == "2026-07-01 07:00:00+00:00"
    assert when(None) == ""


def test_relative_and_short() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert relative(now + timedelta(minutes=5, seconds=3), now) == "in 5m 03s"
    assert relative(now - timedelta(seconds=12), now) == "12 s ago"
    assert relative(now, now) == "now"
    assert short("first line\nsecond", 60) == "first line"
    assert short("x" * 80, 10) == "x" * 9 + "…"


def test_control_characters_of_stored_text_are_shown_not_obeyed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = Output()
    out.table(["name"], [[HOSTILE]], title=HOSTILE)
    out.fields([("error", HOSTILE)])
    out.line(f"run failed: {HOSTILE}\nsecond line\tok")
    out.warn(HOSTILE)
    with pytest.raises(typer.Exit):
        out.fail(HOSTILE)
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in stream)
        assert "\\x1b[31mred\\x1b[0m \\x1b[2J\\x1b]0;pwned\\x07\\x0dOVER\\x9b1m" in stream
    assert "\nsecond line" in captured.out  # a newline stays one
