"""The exercise cells of the committed notebooks (the student versions) and their solutions.

Each notebook 01-05 poses at least one exercise; every exercise has one solution in
``notebooks/solutions.py`` and every solution an exercise; a student version holds ``None`` where
the answer goes and shows its check's "not done yet" line, so it runs to the end. The browser
suite runs the solution versions (:mod:`tests.solution_versions`), the Livy suite the student
versions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ctr_lab.errors import CtrLabError
from ctr_lab.exercises import EXERCISES, NOT_DONE, Verdict
from ctr_lab.tools import solutions as sol
from ctr_lab.tools.casestudy import ordered_notebooks

nbformat = pytest.importorskip("nbformat", reason="the Jupyter stack is in the lab environment")

ROOT = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = {
    p.relative_to(ROOT).as_posix(): nbformat.read(p, as_version=4) for p in ordered_notebooks(ROOT)
}
POSED = {name: sol.exercises(nb) for name, nb in NOTEBOOKS.items()}
SOLUTIONS = sol.read(ROOT)


def test_each_notebook_01_to_05_poses_an_exercise_of_its_own_number():
    for number in ["01", "02", "03", "04", "05"]:
        (name,) = [n for n in NOTEBOOKS if n.startswith(number)]
        assert POSED[name], f"{name} poses no exercise"
        assert all(e.startswith(number + "-") for e in POSED[name]), POSED[name]


def test_every_exercise_has_one_solution_and_a_check():
    posed = [e for found in POSED.values() for e in found]
    assert len(posed) == len(set(posed)), posed
    assert sorted(posed) == sorted(SOLUTIONS) == sorted(EXERCISES)


def test_student_versions_hold_none_and_say_not_done_yet():
    for name, nb in NOTEBOOKS.items():
        for cell in nb.cells:
            exercise = sol.exercise_id(cell)
            if not exercise:
                continue
            answer = re.search(r'check\("[\w-]+", (\w+)', cell.source)[1]
            assert re.search(rf"^{answer} = None$", cell.source, re.M), (name, cell.source)
            printed = "".join(o.get("text", "") for o in cell.outputs)
            assert printed.rstrip("\n") == str(Verdict(exercise, NOT_DONE)), (name, printed)


def test_the_solution_version_replaces_only_the_exercise_cells():
    nb = NOTEBOOKS["04_model_improvement.ipynb"]
    solved = sol.solution_version(nb, SOLUTIONS)
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, solved.cells)) if a.source != b.source]
    assert [sol.exercise_id(nb.cells[i]) for i in changed] == ["04-count-feature"]
    assert solved.cells[changed[0]].source == SOLUTIONS["04-count-feature"]
    assert "= None" in nb.cells[changed[0]].source  # the committed notebook is left alone


def test_a_missing_or_unmatched_solution_is_refused():
    nb = NOTEBOOKS["03_model_building.ipynb"]
    with pytest.raises(CtrLabError, match="exercise 03-log-loss has no solution"):
        sol.solution_version(nb, {})
    other_check = 'x = 1\ncl.exercises.check("03-log-loss", x, [])'
    with pytest.raises(CtrLabError, match="does not end with the exercise's check line"):
        sol.solution_version(nb, {"03-log-loss": other_check})
    with pytest.raises(CtrLabError, match="two solutions"):
        sol.parse("# %% a\nx\n# %% a\ny\n")
    cell = nbformat.v4.new_code_cell("x = None", metadata={"tags": ["exercise"]})
    with pytest.raises(CtrLabError, match="not with its check"):
        sol.exercise_id(cell)


def test_the_threshold_exercise_states_the_budget_its_check_uses():
    from ctr_lab.exercises import BUDGET_PER_CONVERSION, COST_PER_AD

    nb = NOTEBOOKS["05_feature_engineering_and_thresholds.ipynb"]
    (index,) = [i for i, c in enumerate(nb.cells) if sol.exercise_id(c) == "05-threshold"]
    assert f"₹{BUDGET_PER_CONVERSION:g} per conversion" in nb.cells[index - 1].source
    assert f"cost_per_ad={COST_PER_AD}" in nb.cells[index].source
    assert f"<= {BUDGET_PER_CONVERSION:g}]" in SOLUTIONS["05-threshold"]


def test_the_assignment_poses_a_feature_and_its_grade_is_compared_as_committed_only():
    starter = NOTEBOOKS["assignment/starter.ipynb"]
    assert POSED["assignment/starter.ipynb"] == ["assignment-feature"]
    tagged = [
        i
        for i, c in enumerate(starter.cells)
        if sol.DEPENDS_TAG in c.get("metadata", {}).get("tags", [])
    ]
    assert [starter.cells[i].source.split("(")[0] for i in tagged] == [
        "grade = cl.assignment.grade",  # in the session
        "students, held_out = cl.grading.grading_files",  # and the grade of record
    ]
    from tests.solution_versions import expected

    solved = expected(ROOT / "assignment/starter.ipynb")
    for i in tagged:
        assert "nbval-ignore-output" in solved.cells[i].metadata["tags"]
        assert "nbval-ignore-output" not in starter.cells[i].metadata["tags"]
