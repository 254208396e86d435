"""Migrations: the numbered SQL files of each dialect, found in the package."""

from __future__ import annotations

from importlib import resources


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The migrations of a dialect, ``(version, sql)`` in order, from ``migrations/<dialect>``.

    A file is named ``NNNN_what.sql``; its version is ``NNNN``.
    """
    folder = resources.files("tickwork.store").joinpath("migrations", dialect)
    found: list[tuple[int, str]] = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found
