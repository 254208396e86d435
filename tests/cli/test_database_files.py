"""A SQLite file that is not one tickwork can use: another program's database, one
made by a newer tickwork, or no database at all. Each command refuses it in one line
and leaves the file exactly as it was (no table added, no journal mode switched, no
downgrade)."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, cli_env


def _refused(db: Path, *command: str) -> str:
    """Run ``tickwork --db sqlite:///DB COMMAND``: its one error line."""
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", f"sqlite:///{db}", *command],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


COMMANDS = [["status"], ["db", "upgrade"], ["worker"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_another_programs_database_is_refused_untouched(tmp_path: Path, command: list[str]) -> None:
    """Before: tickwork's sixteen tables were added beside the program's own."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('bob')")
    conn.close()
    before = _digest(db)
    line = _refused(db, *command)
    assert "is not a tickwork database" in line and "(users)" in line, line
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_of_a_newer_tickwork_is_refused_untouched(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "newer.db"
    subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "--db", f"sqlite:///{db}", "db", "upgrade"],
        cwd=ROOT,
        env=cli_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    with sqlite3.connect(db) as conn:
        latest = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (latest + 1,))
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the file hashed
    conn.close()
    before = _digest(db)
    line = _refused(db, *command)
    expected = f"has schema version {latest + 1}, newer than this tickwork knows ({latest})"
    assert expected in line and "upgrade tickwork" in line, line
    assert _digest(db) == before
    with sqlite3.connect(db) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    conn.close()
    assert versions == [*range(1, latest + 1), latest + 1]


def test_a_file_that_is_no_database_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("not a database\n" * 100)
    line = _refused(db, "status")
    assert "file is not a database" in line, line
    assert db.read_text() == "not a database\n" * 100
