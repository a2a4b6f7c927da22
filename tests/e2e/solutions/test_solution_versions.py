"""The solution versions, as ``make run`` runs them: every notebook with exercises goes through
``ctr-lab run`` (solution versions, one driver JVM, the local kernel), and each executed copy must
pass nbval's comparison (:mod:`tests.nbval_compare`) with the committed notebook whose exercise
cells hold the solutions and print their check's pass line. Every other output stays as committed:
a solution changes nothing but its own cell.

The committed notebooks themselves (the student versions, whose checks say "not done yet") run in
the browser and through Livy. The models come from ``build/models`` when the browser's runs saved
them there (``make test`` runs this suite after the browser), so this pass reloads them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

from ctr_lab.exercises import PASS, Verdict
from ctr_lab.tools import solutions as sol
from ctr_lab.tools.casestudy import ordered_notebooks
from tests.nbval_compare import differences

REPO = Path(__file__).resolve().parents[3]
ROOT = REPO / "notebooks"
WITH_EXERCISES = [
    p.relative_to(ROOT).as_posix()
    for p in ordered_notebooks(ROOT)
    if sol.exercises(nbformat.read(p, as_version=4))
]


def expected(path: Path, solutions: dict) -> nbformat.NotebookNode:
    """The committed notebook in its solution version, each check printing its pass line."""
    nb = sol.solution_version(nbformat.read(path, as_version=4), solutions)
    for cell in nb.cells:
        exercise = sol.exercise_id(cell)
        if exercise:
            line = str(Verdict(exercise, PASS))  # as saved: without the final newline
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=line)]
    return nb


def test_every_solution_version_passes_its_checks_and_changes_nothing_else(tmp_path):
    assert len(WITH_EXERCISES) >= 5, WITH_EXERCISES
    only = [arg for name in WITH_EXERCISES for arg in ("--only", name)]
    out = tmp_path / "run"
    ran = subprocess.run(
        [sys.executable, "-m", "ctr_lab.tools", "run", "--out", str(out), *only],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    solutions = sol.read(ROOT)
    found = []
    for name in WITH_EXERCISES:
        want = tmp_path / "expected" / name
        want.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(expected(ROOT / name, solutions), want)
        found += differences(out / "notebooks" / name, want, ROOT / "nbval_sanitize.cfg")
    assert not found, "\n\n".join(found)
