"""``run_to_end``: the worker's ``asyncio.run`` that leaves a task ignoring its
cancellation behind instead of waiting for it for good, with the exit code of how the
node's coroutine ended."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, contextlib, sys
    from tickwork.cli.worker import run_to_end

    async def deaf():
        while True:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)

    async def main():
        asyncio.get_running_loop().create_task(deaf())
        await asyncio.sleep(0.05)
        if sys.argv[1] == "fails":
            raise RuntimeError("the node could not start")

    run_to_end(main())
    """
)


@pytest.mark.parametrize(("how", "code"), [("stops", 0), ("fails", 1)])
def test_a_task_left_running_neither_holds_the_process_nor_hides_a_failure(
    how: str, code: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, how], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == code, done.stderr
    assert "exiting with 1 async task(s) still running" in done.stderr
