"""The vendored front-end files are the pinned versions the README in static/ names."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

STATIC = resources.files("tickwork.web").joinpath("static")


def test_vendored_files_match_their_recorded_checksums() -> None:
    readme = STATIC.joinpath("README.md").read_text()
    rows = re.findall(r"^\| (\S+) \| .*? \| (\S+) \| .*? \| ([0-9a-f]{64}) \|$", readme, re.M)
    assert {name for name, _, _ in rows} == {
        "htmx.min.js",
        "htmx-ext-sse.min.js",
        "uPlot.iife.min.js",
        "uPlot.min.css",
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    }
    for name, _version, digest in rows:
        assert hashlib.sha256(STATIC.joinpath(name).read_bytes()).hexdigest() == digest, name


def test_htmx_is_the_2x_line() -> None:
    head = STATIC.joinpath("htmx.min.js").read_text()
    assert re.search(r'version:"2\.0\.\d+"', head), "htmx must stay on 2.x"
    assert 'version:"2.0.11"' in head
