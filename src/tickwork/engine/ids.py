"""Identifiers for runs, schedules and nodes."""

from __future__ import annotations

import os
import secrets
import socket
import time

#: Base32 "extended hex" digits for every 10-bit value, two characters each.
_PAIRS: tuple[str, ...] = tuple(
    a + b for a in "0123456789abcdefghijklmnopqrstuv" for b in "0123456789abcdefghijklmnopqrstuv"
)


def new_id() -> str:
    """A 26-character, time-ordered, random id (ULID-like: 48-bit ms time + 80 random bits).

    Time order keeps index inserts local; the random part makes collisions between
    nodes negligible without coordination. Base32 "extended hex" keeps the sort order.
    The same text as ``base64.b32hexencode(raw)[:26].lower()``, made from 10-bit pairs
    (a fire makes thousands; the base64 module encodes in Python, five times slower).
    """
    value = (time.time_ns() // 1_000_000) << 82 | int.from_bytes(os.urandom(10), "big") << 2
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])


def node_id() -> str:
    """An id for this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
