"""Migrations: the numbered SQL files of each dialect, found in the package, applied
in order by one ``upgrade`` loop for both dialects."""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from importlib import resources

from tickwork.errors import StoreError
from tickwork.store.dialect import SqlCore, Tx


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


class Migrations(SqlCore):
    """The one ``upgrade`` loop; a dialect says how it excludes other migrators and how
    it runs a script."""

    @abstractmethod
    def _migrating(self) -> AbstractContextManager[Tx]:
        """A write transaction no other migrator (thread or process) runs beside."""

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied (0: none), read without the migrators' lock."""

    @abstractmethod
    def _run_script(self, tx: Tx, script: str) -> None:
        """Run one migration file (several statements, no parameters) in ``tx``."""

    def upgrade(self) -> list[int]:
        migrations = load_migrations(self.dialect)
        latest = migrations[-1][0] if migrations else 0
        # Most opens find the schema up to date: a read says so without the lock, which
        # another process may hold for long (a migration of a large database).
        found = self.schema_version()
        self._check_known(found, latest)
        if found == latest:
            return []
        applied: list[int] = []
        with self._migrating() as tx:
            tx.execute(self._sql("create_schema_migrations"))
            current = int(tx.execute(self._sql("schema_version"))[0][0] or 0)
            self._check_known(current, latest)
            for version, script in migrations:
                if version <= current:
                    continue
                self._run_script(tx, script)
                tx.execute(self._sql("record_migration"), (version, self._ts(datetime.now(UTC))))
                applied.append(version)
        return applied

    def _check_known(self, current: int, latest: int) -> None:
        """Refuse a schema a newer tickwork migrated: this one does not know it."""
        if current > latest:
            raise StoreError(
                f"database {self.url} has schema version {current}, newer than this"
                f" tickwork knows ({latest}); upgrade tickwork"
            )
