"""The SQL of what each dashboard user chose to see (both dialects): a few named values
per principal, so a choice follows the user to every browser rather than staying in one.

``SqlStore`` inherits this.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final

from tickwork.errors import ValidationError
from tickwork.store.sql_hooks import SqlHooks

if TYPE_CHECKING:
    pass

#: At most this many characters in a setting's name and in its value.
MAX_SETTING_NAME: Final = 64
MAX_SETTING_VALUE: Final = 256


class UserSettingsSql(SqlHooks):
    """Per-user display settings (a mixin of ``SqlStore``)."""

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
