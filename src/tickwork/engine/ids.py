"""Identifiers for runs, schedules and nodes."""

from __future__ import annotations

import os
import secrets
import socket
import time


def new_id() -> str:
    """A 26-character, time-ordered, random id (ULID-like: 48-bit ms time + 80 random bits).

    Time order keeps index inserts local; the random part makes collisions between
    nodes negligible without coordination.
    """
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return _encode(value)


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def node_id() -> str:
    """An id for this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
