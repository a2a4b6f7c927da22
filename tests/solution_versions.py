"""The notebooks' solution versions as the browser suite runs them, and what nbval should see.

The browser suite runs each notebook that poses exercises in its solution version (the student
versions, as committed, run through Livy): the file it opens is :func:`ctr_lab.tools.solutions.
solution_version` of the committed one, and the saved result must pass nbval's comparison with
:func:`expected`: every output as committed, except that each exercise's check prints pass (and
the cells whose output the answer changes).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ctr_lab.exercises import PASS, Verdict
from ctr_lab.tools import solutions as sol


def poses_exercises(committed: Path) -> bool:
    """Whether the notebook ``committed`` has exercise cells."""
    return bool(sol.exercises(nbformat.read(committed, as_version=4)))


#: The notebooks' folder, whose solutions file holds every notebook's solutions.
ROOT = Path(__file__).resolve().parents[1] / "notebooks"


def solution_version(committed: Path) -> nbformat.NotebookNode:
    """``committed`` with each exercise cell's solution from ``notebooks/solutions.py``."""
    return sol.solution_version(nbformat.read(committed, as_version=4), sol.read(ROOT))


def write_solution_version(committed: Path, dest: Path) -> bool:
    """Write ``committed``'s solution version to ``dest``; False (and nothing) without exercises."""
    if not poses_exercises(committed):
        return False
    nbformat.write(solution_version(committed), dest)
    return True


def expected(committed: Path) -> nbformat.NotebookNode:
    """``committed``'s solution version with each exercise cell showing its check's pass line.

    A cell tagged :data:`ctr_lab.tools.solutions.DEPENDS_TAG` (the assignment's grade, which
    the student's answer changes) is left out of the comparison, as nbval's
    ``nbval-ignore-output`` tag leaves a cell out: it must still run without an error.
    """
    nb = solution_version(committed)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if sol.DEPENDS_TAG in tags and "nbval-ignore-output" not in tags:
            cell.metadata["tags"] = [*tags, "nbval-ignore-output"]
        exercise = sol.exercise_id(cell)
        if exercise:
            line = str(Verdict(exercise, PASS))  # as saved: without the final newline
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=line)]
    return nb
