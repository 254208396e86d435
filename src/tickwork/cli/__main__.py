"""``python -m tickwork.cli``: the same as the ``tickwork`` command."""

from __future__ import annotations

from tickwork.cli.main import main

if __name__ == "__main__":
    main()
