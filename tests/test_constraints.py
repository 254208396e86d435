"""constraints.txt pins every package the development install brings in, so the test
command installs the same versions on any machine and any day."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            found[_name(name)] = version.strip()
    return found


def installed_requirements() -> dict[str, str]:
    """Every distribution ``pip install -e '.[dev]'`` installs, with its version."""
    seen: dict[str, str] = {}
    todo = [("tickwork", frozenset({"dev"}))]
    walked: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (_name(name), extras) in walked:
            continue
        walked.add((_name(name), extras))
        dist = distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in wanted):
                continue
            key = _name(req.name)
            if key == "tickwork":
                todo.append((req.name, frozenset(req.extras)))
                continue
            try:
                version = distribution(req.name).version
            except PackageNotFoundError:
                continue  # an optional part not installed here: nothing to pin
            seen[key] = version
            todo.append((req.name, frozenset(req.extras)))
    return seen


def test_every_installed_dependency_is_pinned_at_its_installed_version() -> None:
    pinned = pins()
    installed = installed_requirements()
    assert "pytest" in installed and "cronsim" in installed  # the walk found the dev tools
    missing = sorted(f"{n}=={v}" for n, v in installed.items() if n not in pinned)
    assert not missing, f"add to constraints.txt: {', '.join(missing)}"
    differ = sorted(f"{n} {v} (pinned {pinned[n]})" for n, v in installed.items() if pinned[n] != v)
    assert not differ, (
        f"installed versions differ from constraints.txt: {', '.join(differ)}; install "
        "with: python -m pip install -e '.[dev]' -c constraints.txt"
    )
