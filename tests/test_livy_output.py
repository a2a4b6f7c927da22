"""What ctr_lab did shows in a Livy cell's output (``ctr_lab/livy_output.py``).

The Python below does what Livy 0.8's ``fake_shell.py`` does around the statements it runs:
``logging.basicConfig()`` at its start, then for each statement a new ``sys.stdout`` and
``sys.stderr`` whose text becomes the cell's output, closed after it (``clearOutputs``).
``LIVY_SPARK_MAJOR_VERSION`` is in the environment of Livy's Python (``PythonInterpreter.scala``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

REPL = """
import io, json, logging, sys
logging.basicConfig()
outputs = []

def statement(code):
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    exec(code, globals())
    outputs.append(sys.stdout.getvalue() + sys.stderr.getvalue())
    sys.stdout.close()
    sys.stderr.close()

statement("import ctr_lab as cl")
statement(
    "logging.getLogger('ctr_lab.train.store').info('fit_or_load: trained in %.1f s', 8.14)\\n"
    "print('course_baseline: test log loss 0.5659')"
)
statement("logging.getLogger('ctr_lab.train.tuning').info('tune: tried %d settings', 3)")
statement("logging.getLogger('ctr_lab.train.store').debug('not said')")
sys.__stdout__.write(json.dumps(outputs))
"""


def _cells(livy: bool) -> list:
    env = {k: v for k, v in os.environ.items() if k != "LIVY_SPARK_MAJOR_VERSION"}
    if livy:
        env["LIVY_SPARK_MAJOR_VERSION"] = "3"
    run = subprocess.run(
        [sys.executable, "-c", REPL], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(run.stdout), run.stderr]


def test_in_a_livy_session_each_line_comes_in_the_output_of_the_cell_that_said_it():
    outputs, log = _cells(livy=True)
    assert outputs == [
        "",
        "fit_or_load: trained in 8.1 s\ncourse_baseline: test log loss 0.5659\n",
        "tune: tried 3 settings\n",
        "",
    ]
    # Nothing on the REPL's stderr, which Livy keeps for the error of a dying REPL: neither
    # the records (through the root logger's handler) nor a logging error.
    assert log == ""


def test_elsewhere_logging_is_left_as_the_program_set_it_up():
    outputs, log = _cells(livy=False)
    assert outputs == ["", "course_baseline: test log loss 0.5659\n", "", ""]
    assert log == ""
