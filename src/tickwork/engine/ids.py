"""Identifiers for runs, schedules and nodes."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import time


def new_id() -> str:
    """A 26-character, time-ordered, random id (ULID-like: 48-bit ms time + 80 random bits).

    Time order keeps index inserts local; the random part makes collisions between
    nodes negligible without coordination. Base32 "extended hex" keeps the sort order.
    """
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return base64.b32hexencode(raw).decode("ascii")[:26].lower()


def node_id() -> str:
    """An id for this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
