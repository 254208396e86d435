"""Schedule tests: nothing to set up but one environment quirk.

When a hypothesis test fails, hypothesis imports libcst to explain the failure, and
libcst's import raises a DeprecationWarning (from mypy_extensions) that
``filterwarnings = error`` turns into an INTERNALERROR hiding the real failure.
Importing it once here, quietly, keeps failure reports readable.
"""

from __future__ import annotations

import contextlib
import warnings

with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import libcst.metadata  # noqa: F401  (hypothesis works without it)
