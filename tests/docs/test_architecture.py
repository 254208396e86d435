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
    missing = sorted(
        p
        for p in paths - {"src/tickwork/"}
        if not (SRC / p).exists() and not (p.startswith("tests/") and (ROOT / p).exists())
    )
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


def test_every_function_it_names_in_a_module_is_defined_there() -> None:
    """ "`store/attempt_ends.py` (`recover_lost`)": the name is defined in that module
    (a function, class, method, constant or field), so "where is X decided" answers
    with a place that exists."""
    cited = re.findall(r"`([\w/]+\.py)` \(([^)]*)\)", PAGE)
    assert len(cited) > 20, cited
    missing = []
    for path, inside in cited:
        source = (SRC / path).read_text()
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", inside):
            last = name.rsplit(".", 1)[-1]
            defined = rf"\b(def|class)\s+{last}\b|^\s*{last}\s*(:|=)"
            if not re.search(defined, source, re.MULTILINE):
                missing.append(f"{path}: {name}")
    assert not missing, missing


def test_every_policy_of_the_contract_has_a_row() -> None:
    """The contract's policies, each found in the table of where it is decided."""
    table = PAGE.split("## Where each policy is decided", 1)[1].split("## ", 1)[0]
    policies = [
        "overlap",
        "max_instances",
        "catchup",
        "misfire_grace",
        "retry",
        "jitter",
        "timeout",
        "max_concurrent",
        "concurrency",
        "priority",
        "max_executions",
        "start_at",
        "end_at",
        "result and error queues",
        "leases",
        "takeover",
        "leads",
        "retention",
        "idempotent run-now",
        "pause",
        "graceful stop",
    ]
    assert not [p for p in policies if p not in table]
