"""Identifiers for runs, schedules and nodes."""

from __future__ import annotations

import os
import random
import secrets
import socket
import time

#: Base32 "extended hex" digits for every 10-bit value, two characters each.
_PAIRS: tuple[str, ...] = tuple(
    a + b for a in "0123456789abcdefghijklmnopqrstuv" for b in "0123456789abcdefghijklmnopqrstuv"
)

_random_bits = random.Random(os.urandom(32)).getrandbits


def _reseed() -> None:
    # A forked child must not draw the same "random" parts as its parent.
    global _random_bits
    _random_bits = random.Random(os.urandom(32)).getrandbits


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A 26-character, time-ordered, random id (ULID-like: 48-bit ms time + 80 random bits).

    Time order keeps index inserts local; the random part makes collisions between
    nodes negligible without coordination. Base32 "extended hex" keeps the sort order.
    The same text as ``base64.b32hexencode(raw)[:26].lower()``, made from 10-bit pairs;
    the random bits come from a generator seeded by the OS per process (a fire makes
    thousands of ids: a system call each was a third of the cost).
    """
    v = (time.time_ns() // 1_000_000) << 82 | _random_bits(80) << 2
    p = _PAIRS
    return (
        p[v >> 120]
        + p[(v >> 110) & 1023]
        + p[(v >> 100) & 1023]
        + p[(v >> 90) & 1023]
        + p[(v >> 80) & 1023]
        + p[(v >> 70) & 1023]
        + p[(v >> 60) & 1023]
        + p[(v >> 50) & 1023]
        + p[(v >> 40) & 1023]
        + p[(v >> 30) & 1023]
        + p[(v >> 20) & 1023]
        + p[(v >> 10) & 1023]
        + p[v & 1023]
    )


def node_id() -> str:
    """An id for this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
