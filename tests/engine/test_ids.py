"""Run and schedule ids: format, order, and no repeats across a fork."""

from __future__ import annotations

import base64
import os
import re
import time

from tickwork.engine.ids import new_id


def test_format_is_26_base32hex_characters() -> None:
    for _ in range(1000):
        assert re.fullmatch(r"[0-9a-v]{26}", new_id())


def test_prefix_is_the_millisecond_time_so_ids_sort_by_creation() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    # The first 48 bits, decoded the way base64's base32hex would.
    raw = base64.b32hexdecode(made.upper() + "UUUUUU")  # pad to 32 characters
    stamp = int.from_bytes(raw[:6], "big")
    assert before <= stamp <= after
    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_ids_are_unique() -> None:
    ids = {new_id() for _ in range(100_000)}
    assert len(ids) == 100_000


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the ids it makes, then leave without cleanup
        os.close(read)
        os.write(write, ",".join(new_id()[10:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    parent = {new_id()[10:] for _ in range(50)}
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    assert len(child) == 50
    assert not parent & child
