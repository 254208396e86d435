"""How commands print: Rich tables for people, JSON on stdout for scripts, errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass
class Output:
    json: bool = False

    @property
    def console(self) -> Console:
        return Console(highlight=False, soft_wrap=True)

    def emit_json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, default=_default, indent=2) + "\n")

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
        table = Table(title=title)
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        self.console.print(table)

    def line(self, text: str) -> None:
        self.console.print(text)

    def fail(self, message: str, code: int = 1) -> NoReturn:
        """Print ``error: message`` on stderr and exit with ``code``."""
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {message}")
        raise typer.Exit(code)
