"""A task that never returns, imported only by the tests that need it
(``tickwork worker --import tests.cli.hang_tasks``)."""

from __future__ import annotations

import time

from tickwork import task


@task("cli:hang")
def hang() -> None:
    """A sync task that never returns and ignores ``ctx.cancelled``."""
    time.sleep(3600)
