"""docs/architecture.md names modules and functions: each one must exist, so the page
cannot send a reader to a file that moved."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "architecture.md").read_text()
SRC = ROOT / "src" / "tickwork"


def test_every_module_path_it_names_exists() -> None:
    paths = set(re.findall(r"`([\w/]+\.py)`", PAGE)) | set(re.findall(r"`([\w/]+/)`", PAGE))
    assert len(paths) > 30, paths
    missing = sorted(p for p in paths - {"src/tickwork/"} if not (SRC / p).exists())
    assert not missing, missing


def test_every_policy_function_it_names_exists() -> None:
    names = set(re.findall(r"`policy\.(\w+)`", PAGE))
    assert len(names) >= 6, names
    policy = importlib.import_module("tickwork.policy")
    assert not sorted(n for n in names if not hasattr(policy, n))


def test_every_store_method_it_names_exists() -> None:
    from tickwork.store.base import Store

    names = set(re.findall(r"`Store\.(\w+)`", PAGE))
    assert len(names) >= 5, names
    assert not sorted(n for n in names if not hasattr(Store, n))
