"""In a Livy session (sparkmagic's PySpark kernel on EMR), what ctr_lab did shows in the cell.

ctr_lab says what it did as INFO records of its ``ctr_lab`` logger: ``fit_or_load: reloaded the
saved model from s3://... in 2.1 s``, ``fit_or_load: trained in 41.3 s, saved to ...``, ``tune:
tried 3 settings in ...``. The local kernel shows them in the line that shows Spark's progress
(:mod:`ctr_lab.tools.magics`). Livy's Python REPL (``fake_shell.py``, Livy 0.8) shows nothing
of them: it sets up logging with ``logging.basicConfig()`` (WARNING and above, to the driver's
log), and a cell's output is only the statement's stdout and stderr, which it replaces with a
new ``StringIO`` for each statement and closes after it (``execute_request``, ``clearOutputs``).
So a student on EMR could not tell a cell that trained for minutes from one that reloaded the
model saved last week.

:func:`show_in_cells` (called as ``ctr_lab`` is imported) adds a handler that prints those
records to ``sys.stdout`` as it is when the record is made: the statement's own, so each line
comes in the output of the cell that did it, in order with what the cell prints. It does so only
in Livy's REPL, which Livy starts with ``LIVY_SPARK_MAJOR_VERSION`` set
(``repl/.../PythonInterpreter.scala``); elsewhere logging is left as the program set it up.
There the records stop at that handler: passed on to ``basicConfig``'s, on the REPL's stderr,
they would pile up in Livy, which keeps every stderr line of the REPL and hands them all to the
student as the error of a statement the REPL dies under (``ProcessInterpreter.scala``,
``takeErrorLines``).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Mapping

#: Set by Livy for the Python process of every PySpark session (``PythonInterpreter.scala``).
LIVY_REPL_VARIABLE = "LIVY_SPARK_MAJOR_VERSION"


class _CellOutput(logging.Handler):
    """Prints each record's message to the ``sys.stdout`` of the moment: a statement's own."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
        except Exception:
            self.handleError(record)


def show_in_cells(environ: Mapping[str, str] = os.environ) -> bool:
    """In Livy's Python REPL, print ctr_lab's INFO records in the output of the cell that made
    them (once per process); elsewhere, nothing. Whether the handler is there."""
    if not environ.get(LIVY_REPL_VARIABLE):
        return False
    logger = logging.getLogger("ctr_lab")
    if not any(isinstance(handler, _CellOutput) for handler in logger.handlers):
        logger.addHandler(_CellOutput(logging.INFO))
        logger.propagate = False
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    return True
