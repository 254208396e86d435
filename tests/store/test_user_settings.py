"""What each dashboard user chose to see, saved per user on both databases."""

from __future__ import annotations

import pytest

from tickwork.errors import ValidationError
from tickwork.store import Store

from .conftest import at


def test_settings_are_saved_per_user_and_replaced_by_name(store: Store) -> None:
    assert store.user_settings("ann") == {}
    store.set_user_settings("ann", {"time_mode": "utc", "browser_zone": "Asia/Tokyo"}, at(0))
    store.set_user_settings("bob", {"time_mode": "browser"}, at(0))
    store.set_user_settings("ann", {"time_mode": "schedule"}, at(1))
    assert store.user_settings("ann") == {"time_mode": "schedule", "browser_zone": "Asia/Tokyo"}
    assert store.user_settings("bob") == {"time_mode": "browser"}
    store.set_user_settings("ann", {}, at(2))  # nothing to save
    assert store.user_settings("ann")["time_mode"] == "schedule"


def test_settings_are_bounded(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.set_user_settings("ann", {"time_mode": "x" * 257}, at(0))
    with pytest.raises(ValidationError):
        store.set_user_settings("ann", {"n" * 65: "utc"}, at(0))
    assert store.user_settings("ann") == {}
