"""``tickwork queue read NAME``: results and errors that runs put on a named queue."""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

import typer

from tickwork.cli.client import globals_of, with_client
from tickwork.cli.main import app
from tickwork.cli.output import Output, when
from tickwork.models import QueueMessage

queue_app = typer.Typer(
    name="queue",
    help="Queues: where runs put their results (result_queue) and errors (error_queue).",
    no_args_is_help=True,
)
app.add_typer(queue_app)


@queue_app.command(
    "read",
    help="Print the messages of a queue, oldest first; --consume also removes them.",
)
def read(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The queue."),
    consume: bool = typer.Option(
        False, "--consume", help="Remove the messages read (default: only look)."
    ),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="At most this many."),
) -> None:
    out = globals_of(ctx).out
    if not name.strip():
        out.fail("NAME is empty: give the queue's name (a schedule's --result-queue)", code=2)

    messages: list[QueueMessage] = with_client(
        ctx, lambda scheduler: scheduler.read_queue(name, consume=consume, limit=limit)
    )
    try:
        _show(out, name, messages, consume)
    except OSError as exc:
        _rescue(out, messages if consume else [], exc)


def _rescue(out: Output, consumed: list[QueueMessage], exc: OSError) -> NoReturn:
    """Stdout failed (a full disk, a closed pipe). Consumed messages are gone from the
    queue: they go to stderr instead, so they are not lost with stdout."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # what stdout still holds is lost
    if not consumed:
        out.fail(f"cannot print the messages ({exc.strerror or exc}); they stay in the queue")
    sys.stderr.write(json.dumps([m.to_dict() for m in consumed], indent=2, default=str) + "\n")
    out.fail(
        f"cannot print the {len(consumed)} consumed message(s) ({exc.strerror or exc}): "
        "they are removed from the queue, and written above on stderr as JSON"
    )


def _show(out: Output, name: str, messages: list[QueueMessage], consume: bool) -> None:
    if out.json:
        out.emit_json([m.to_dict() for m in messages])
        return
    if not messages:
        out.line(f"queue {name} is empty")
        return
    out.table(
        ["id", "at", "kind", "run", "schedule", "payload"],
        [
            [
                m.id,
                when(m.created_at),
                m.kind,
                m.run_id,
                m.schedule_id,
                json.dumps(m.payload, ensure_ascii=False, sort_keys=True),
            ]
            for m in messages
        ],
        title=f"queue {name}" + (" (consumed)" if consume else ""),
    )
