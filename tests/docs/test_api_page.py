"""docs/api.md's table of errors says when each status is answered: every refusal the
API makes with a 409 is named in its row (the tests of ``tests/api`` make each one)."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"

#: Each conflict the API answers, and the words of the row that name it.
CONFLICTS = {
    "POST /schedules with an id another schedule has": "an id that is taken",
    "POST /runs/{id}/cancel of a run that ended": "a run already over",
    "Idempotency-Key of another schedule's run": "`Idempotency-Key` used for another",
    "DELETE /tokens/{id} of a token revoked before": "a token already revoked",
}


def _row(status: int) -> str:
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {status} |"):
            return line
    raise AssertionError(f"docs/api.md has no row for {status} in its table of errors")


def test_every_conflict_is_in_the_table_of_errors() -> None:
    row = _row(409)
    missing = [what for what, words in CONFLICTS.items() if words not in row]
    assert not missing, f"the 409 row of docs/api.md does not name: {missing}"
