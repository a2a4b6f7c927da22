"""What ctr_lab did shows in a Livy cell's output (``ctr_lab/livy_output.py``).

The statements run in the Livy double's REPL (``tests/e2e/livy/livy_repl.py``), which follows
Livy 0.8's ``fake_shell.py``: ``logging.basicConfig()`` as it starts, then a ``sys.stdout`` and
``sys.stderr`` whose text becomes a statement's output, closed and replaced after it
(``clearOutputs``). ``LIVY_SPARK_MAJOR_VERSION`` is in the environment of Livy's Python
(``PythonInterpreter.scala``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

STATEMENTS = [
    "import logging\nimport ctr_lab as cl",
    "logging.getLogger('ctr_lab.train.store').info('fit_or_load: trained in %.1f s', 8.14)\n"
    "print('course_baseline: test log loss 0.5659')",
    "logging.getLogger('ctr_lab.train.tuning').info('tune: tried %d settings', 3)",
    "logging.getLogger('ctr_lab.train.store').debug('not said')",
]
REPL = f"""
import io, json, sys
import livy_repl
sys.stdout, sys.stderr = io.StringIO(), io.StringIO()  # as livy_repl.main sets them
replies = [livy_repl.execute(code) for code in {STATEMENTS!r}]
sys.__stdout__.write(json.dumps([r["data"]["text/plain"] for r in replies]))
"""


def _cells(livy: bool) -> list:
    env = {k: v for k, v in os.environ.items() if k != "LIVY_SPARK_MAJOR_VERSION"}
    if livy:
        env["LIVY_SPARK_MAJOR_VERSION"] = "3"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests" / "e2e" / "livy")])
    run = subprocess.run(
        [sys.executable, "-c", REPL], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(run.stdout), run.stderr]


def test_in_a_livy_session_each_line_comes_in_the_output_of_the_cell_that_said_it():
    outputs, log = _cells(livy=True)
    assert outputs == [
        "",
        "fit_or_load: trained in 8.1 s\ncourse_baseline: test log loss 0.5659",
        "tune: tried 3 settings",
        "",
    ]
    # Nothing on the REPL's stderr, which Livy keeps for the error of a dying REPL: neither
    # the records (through the root logger's handler) nor a logging error.
    assert log == ""


def test_elsewhere_logging_is_left_as_the_program_set_it_up():
    outputs, log = _cells(livy=False)
    assert outputs == ["", "course_baseline: test log loss 0.5659", "", ""]
    assert log == ""
