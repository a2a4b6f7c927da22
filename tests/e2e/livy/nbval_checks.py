"""A pytest plugin for the nbval runs of ``test_livy_notebooks.py``.

* **A plot cell must show a plot.** sparkmagic's ``%matplot`` line magic writes a remote failure
  (for example ``plt`` not defined in the Spark session) to stderr and never raises, even with
  ``all_errors_are_fatal``, so nbval would pass a notebook whose plots never arrive. This hook
  fails such a cell unless its outputs hold an ``image/png``.
* **sparkmagic's progress bar is not an output of the cell.** For every statement sparkmagic
  displays an ipywidgets ``FloatProgress`` and closes it when the statement ends
  (``livyclientlib/command.py``, ``_get_statement_output``): JupyterLab then shows nothing, but
  the kernel's ``display_data`` message stays, with the widget's ``text/plain`` repr
  (``FloatProgress(value=0.0, ...)``). nbval compares that text. Outputs that carry a widget
  view are left out of the fresh outputs before nbval compares them; every other output of the
  cell is compared as before.
* **What ctr_lab says it did is not compared.** On EMR ctr_lab prints lines such as
  ``fit_or_load: reloaded the saved model from ...`` in the output of the cell that did it
  (``ctr_lab/livy_output.py``); the local kernel shows them in its progress line, which is not
  saved. ``notebooks/nbval_sanitize.cfg`` removes those lines; a stream output left with no
  text (a cell whose only output they were, such as the assignment's ``fit_or_load`` cell) is
  then left out of the fresh outputs, as the output the cell has on a laptop: none.
* **A cell tagged** ``emr-output-differs`` **runs, and is not compared.** Its committed output is
  the local kernel's, and on an EMR-like driver it prints something else by design: the
  assignment's grade of record runs ``ctr-lab grade`` where ``ctr-lab`` is installed and, on a
  driver that gets the library's core only, prints the instructor's command
  (:func:`ctr_lab.grading.grade_of_record`). The local runs compare it as committed; here it
  must print that command.
"""

from __future__ import annotations

import pytest
from nbval.plugin import IPyNbCell

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: The tag of a cell whose output on EMR is not the committed (local) one.
EMR_DIFFERS = "emr-output-differs"
#: What such a cell prints on an EMR-like driver.
EMR_SAYS = "your instructor grades the model with:"


def without_widgets(outputs: list) -> list:
    """``outputs`` without displays of a widget view (sparkmagic's progress bar)."""
    return [o for o in outputs if WIDGET_VIEW not in o.get("data", {})]


_compare_outputs = IPyNbCell.compare_outputs


def _compare_as_shown(self, test, ref, skip_compare=None):
    shown = [
        o
        for o in without_widgets(test)
        if o.get("output_type") != "stream" or self.sanitize(o.get("text", ""))
    ]
    return _compare_outputs(self, shown, ref, skip_compare)


def pytest_configure(config) -> None:
    IPyNbCell.compare_outputs = _compare_as_shown


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and EMR_DIFFERS in cell.get("metadata", {}).get("tags", []):
            item.options["check"] = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    cell = getattr(item, "cell", None)
    if cell is not None and EMR_DIFFERS in cell.get("metadata", {}).get("tags", []):
        said = "".join(o.get("text", "") for o in item.test_outputs or [])
        if EMR_SAYS not in said:
            pytest.fail(f"a cell tagged {EMR_DIFFERS} printed {said.strip()[:2000]!r}")
    first = cell.source.lstrip().split("\n", 1)[0] if cell is not None else ""
    if first.startswith("%matplot"):
        outputs = getattr(item, "test_outputs", None) or []
        if not any("image/png" in out.get("data", {}) for out in outputs):
            said = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
            pytest.fail(f"{first!r} showed no image/png; the kernel said: {said.strip()[:2000]}")
    return result
