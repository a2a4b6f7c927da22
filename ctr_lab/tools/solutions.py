"""The solution versions of the notebooks, made from the student versions and one solutions file.

The committed notebooks are the student versions: each exercise is a code cell tagged
``exercise`` whose answer is ``None`` and whose last line is the check,
``cl.exercises.check("ID", answer, ...)``. ``notebooks/solutions.py`` holds, for each exercise (the
assignment's too), the whole cell as its solution writes it, after a ``# %% ID`` line, ending with
the same check line.
:func:`solution_version` puts them in place; ``ctr-lab run`` (``make run``) runs the notebooks that
way, and the test suite checks that each check then says pass.

Examples
--------
>>> import nbformat
>>> cell = nbformat.v4.new_code_cell('rate = None\\ncl.exercises.check("01-click-rate", rate, df)')
>>> cell.metadata["tags"] = ["exercise"]
>>> nb = nbformat.v4.new_notebook(cells=[cell])
>>> solutions = parse('# %% 01-click-rate\\nrate = df.groupBy("site_category").agg(...)\\n'
...                   'cl.exercises.check("01-click-rate", rate, df)\\n')
>>> print(solution_version(nb, solutions).cells[0].source)
rate = df.groupBy("site_category").agg(...)
cl.exercises.check("01-click-rate", rate, df)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from ctr_lab.errors import CtrLabError

#: The tag of an exercise cell.
TAG = "exercise"
#: The tag of a cell whose output depends on the answer (the assignment's grade): nbval compares
#: it in the student version only.
DEPENDS_TAG = "depends-on-exercise"
#: The solutions file, beside the notebooks.
SOLUTIONS_FILE = "solutions.py"
_SECTION = re.compile(r"^# %% (?P<id>[\w-]+)[ \t]*$", re.M)
_CHECK = re.compile(r"""^cl\.exercises\.check\(["'](?P<id>[\w-]+)["']""")


def parse(text: str, name: str = SOLUTIONS_FILE) -> Dict[str, str]:
    """The solutions in ``text``: exercise id -> the cell's source (each after its ``# %% ID``)."""
    marks = list(_SECTION.finditer(text))
    solutions: Dict[str, str] = {}
    for mark, following in zip(marks, [*marks[1:], None]):
        body = text[mark.end() : following.start() if following else len(text)].strip("\n")
        if mark["id"] in solutions:
            raise CtrLabError(f"{name}: exercise {mark['id']} has two solutions. Fix: keep one")
        solutions[mark["id"]] = body
    return solutions


def read(folder: Path) -> Dict[str, str]:
    """The solutions in ``folder``'s :data:`SOLUTIONS_FILE`; none when it has no such file."""
    path = folder / SOLUTIONS_FILE
    if not path.is_file():
        return {}
    return parse(path.read_text(encoding="utf-8"), str(path))


def exercise_id(cell: Any) -> Optional[str]:
    """The exercise a cell poses (``None`` for any other cell); its last line must be the check."""
    if cell.get("cell_type") != "code" or TAG not in cell.get("metadata", {}).get("tags", []):
        return None
    last = cell.source.rstrip().splitlines()[-1] if cell.source.strip() else ""
    found = _CHECK.match(last)
    if not found:
        raise CtrLabError(
            f"an exercise cell ends with {last!r}, not with its check. Fix: end it with "
            'cl.exercises.check("ID", answer, ...)'
        )
    return found["id"]


def exercises(nb: Any) -> List[str]:
    """The ids of the exercises ``nb`` poses, in order."""
    return [i for i in (exercise_id(c) for c in nb.cells) if i]


def solution_version(nb: Any, solutions: Dict[str, str]) -> Any:
    """A copy of ``nb`` with each exercise cell's source replaced by its solution.

    Refuses an exercise without a solution, and a solution that does not end with the exercise
    cell's own check line (the student's check must be the one that passes).
    """
    solved = copy.deepcopy(nb)
    for cell in solved.cells:
        exercise = exercise_id(cell)
        if exercise is None:
            continue
        if exercise not in solutions:
            raise CtrLabError(
                f"exercise {exercise} has no solution. Fix: add '# %% {exercise}' and its cell "
                f"to {SOLUTIONS_FILE} beside the notebooks, or run them as they are (--student)"
            )
        check_line = cell.source.rstrip().splitlines()[-1]
        if solutions[exercise].rstrip().splitlines()[-1] != check_line:
            raise CtrLabError(
                f"the solution of {exercise} does not end with the exercise's check line "
                f"{check_line!r}. Fix: end it with that line"
            )
        cell.source = solutions[exercise]
    return solved
