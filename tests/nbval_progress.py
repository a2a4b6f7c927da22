"""nbval plugin (``-p tests.nbval_progress``): progress displays are not part of the comparison.

A notebook saved after a run in Jupyter keeps the local kernel's one-line Spark summaries
(:data:`ctr_lab.tools.magics.PROGRESS_MIME`); their jobs, tasks and seconds differ from run to run
and machine to machine, and ``make notebooks-check`` runs without them. So they are left out of
the committed outputs nbval compares against, and the rest must still match.
"""

from __future__ import annotations

from ctr_lab.tools.magics import PROGRESS_MIME


def without_progress(outputs: list) -> list:
    """``outputs`` without the progress displays."""
    return [o for o in outputs if PROGRESS_MIME not in o.get("data", {})]


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's IPyNbCell keeps the notebook cell here
        if cell is not None and "outputs" in cell:
            cell.outputs = without_progress(cell.outputs)
