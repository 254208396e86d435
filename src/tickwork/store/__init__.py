"""Persistence: the ``Store`` interface and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

from tickwork.store.base import Heartbeat, Store
from tickwork.store.url import open_store

__all__ = ["Heartbeat", "Store", "open_store"]
