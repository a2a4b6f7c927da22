"""nbval's own output comparison, applied to a notebook that was run elsewhere and saved.

The browser suite runs every notebook in JupyterLab and saves it; comparing that saved file with
the committed one is what ``make notebooks-check`` does after running the notebook itself, so
``make test`` runs each notebook once on the local kernel instead of twice. The comparison is
nbval's (``nbval.plugin.IPyNbCell.compare_outputs`` with its ``coalesce_streams``, its cell
markers and tags and the sanitize file the Makefile gives it), not a copy of it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, List

import nbformat
from nbval.plugin import (
    IPyNbCell,
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    get_sanitize_patterns,
    nocolors,
)

from tests.nbval_progress import without_progress

#: What ``nbval.plugin.IPyNbFile.__init__`` leaves out of the comparison without ``--nbdime``
#: (nbval 0.11.0): it sets them on each file object, so they cannot be read from the class.
SKIP_COMPARE = (
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
)


class _Cell:
    """The part of an ``IPyNbCell`` that ``compare_outputs`` reads: its file and its colours."""

    colors = nocolors
    compare_outputs = IPyNbCell.compare_outputs
    format_output_compare = IPyNbCell.format_output_compare
    sanitize = IPyNbCell.sanitize

    def __init__(self, patterns: Any) -> None:
        self.parent = SimpleNamespace(sanitize_patterns=patterns, skip_compare=SKIP_COMPARE)
        self.config = None
        # No pytest assertion rewriting here: nbval falls back to printing both outputs.
        self.ihook = SimpleNamespace(pytest_assertrepr_compare=lambda **_: [])
        self.comparison_traceback: List[str] = []


def _options(cell: Any) -> dict:
    """A cell's nbval options as ``IPyNbFile.collect`` builds them under ``--nbval``."""
    options = dict(find_metadata_tags(cell.metadata))
    options.update(dict(find_comment_markers(cell.source)))
    options.setdefault("check", True)
    return options


def differences(saved: Path, committed: Path, sanitize_file: Path) -> List[str]:
    """What ``pytest --nbval`` would report for ``committed`` if running it gave ``saved``.

    One message per code cell whose outputs differ (after the sanitize patterns, stream
    coalescing and the progress displays set aside, as under ``make notebooks-check``), or whose
    source differs (the saved file must be the committed notebook, run).
    """
    patterns = dict(get_sanitize_patterns(sanitize_file.read_text()))
    ran = [c for c in nbformat.read(saved, as_version=4).cells if c.cell_type == "code"]
    ref = [c for c in nbformat.read(committed, as_version=4).cells if c.cell_type == "code"]
    if [c.source for c in ran] != [c.source for c in ref]:
        return [f"{saved.name}: its code cells are not those of {committed}"]
    found = []
    for number, (test, reference) in enumerate(zip(ran, ref)):
        options = _options(reference)
        if options.get("skip") or not options["check"] or reference.execution_count is None:
            continue
        cell = _Cell(patterns)
        test_outputs = coalesce_streams(without_progress(test.outputs))
        ref_outputs = coalesce_streams(without_progress(reference.outputs))
        if not cell.compare_outputs(test_outputs, ref_outputs):
            detail = "\n".join(cell.comparison_traceback)
            found.append(f"{committed.name} cell {number}: outputs differ\n{detail}")
    return found
