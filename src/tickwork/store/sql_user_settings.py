"""The SQL of what each dashboard user chose to see (both dialects): a few named values
per principal, so a choice follows the user to every browser rather than staying in one.

``SqlStore`` inherits this.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from tickwork.errors import ValidationError

if TYPE_CHECKING:
    from tickwork.store.sql import Tx

#: At most this many characters in a setting's name and in its value.
MAX_SETTING_NAME: Final = 64
MAX_SETTING_VALUE: Final = 256


class UserSettingsSql:
    """Per-user display settings (a mixin of ``SqlStore``)."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def _read(self, snapshot: bool = False) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def _ts(self, dt: datetime | None) -> Any: ...

    @abstractmethod
    def _sql(self, name: str) -> str: ...

    def user_settings(self, user: str) -> dict[str, str]:
        with self._read() as tx:
            rows = tx.execute(self._sql("user_settings"), (user,))
        return {name: value for name, value in rows}

    def set_user_settings(self, user: str, values: Mapping[str, str], now: datetime) -> None:
        for name, value in values.items():
            if len(name) > MAX_SETTING_NAME or len(value) > MAX_SETTING_VALUE:
                raise ValidationError(
                    f"a setting's name is at most {MAX_SETTING_NAME} characters and its "
                    f"value at most {MAX_SETTING_VALUE}"
                )
        if not values:
            return
        with self._write() as tx:
            tx.executemany(
                self._sql("set_user_setting"),
                [(user, name, value, self._ts(now)) for name, value in values.items()],
            )
