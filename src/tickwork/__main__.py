"""``python -m tickwork``: the same as the ``tickwork`` command (where the script is not
on ``PATH``, or to pick the interpreter)."""

from __future__ import annotations

from tickwork.cli.main import main

if __name__ == "__main__":
    main()
