"""What a part of the SQL store written as a mixin of ``SqlStore`` stands on: the named
statements and the dialect's transactions and instants (``SqlCore`` and each dialect
provide them). A mixin inherits ``SqlHooks`` and declares only what else it needs."""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tickwork.store.sql import Tx


class SqlHooks:
    """The hooks every mixin of ``SqlStore`` calls."""

    #: Which variants of the named statements the store runs (set by ``SqlCore``).
    dialect: str

    @abstractmethod
    def _sql(self, name: str) -> str: ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def _read(self, snapshot: bool = False) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def _ts(self, dt: datetime | None) -> Any: ...

    @abstractmethod
    def _dt(self, value: Any) -> datetime | None: ...
