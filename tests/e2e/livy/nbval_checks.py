"""A pytest plugin for the nbval runs of ``test_livy_notebooks.py``: a plot cell must show a plot.

sparkmagic's ``%matplot`` line magic writes a remote failure (for example ``plt`` not defined in
the Spark session) to stderr and never raises, even with ``all_errors_are_fatal``, so nbval would
pass a notebook whose plots never arrive. This hook fails such a cell unless its outputs hold an
``image/png``.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    cell = getattr(item, "cell", None)
    first = cell.source.lstrip().split("\n", 1)[0] if cell is not None else ""
    if first.startswith("%matplot"):
        outputs = getattr(item, "test_outputs", None) or []
        if not any("image/png" in out.get("data", {}) for out in outputs):
            said = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
            pytest.fail(f"{first!r} showed no image/png; the kernel said: {said.strip()[:2000]}")
    return result
