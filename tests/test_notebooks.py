"""The committed notebooks: one runtime (sparkmagic's kernelspec), executed, clean, short cells.

nbval (``make notebooks-check``) re-runs them against these committed outputs; the rules here are
what make that comparison meaningful and the notebooks portable to EMR.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from ctr_lab.tools.casestudy import ORDER

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for p in (REPO / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
IDS = [p.relative_to(REPO / "notebooks").as_posix() for p in NOTEBOOKS]


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(nb: dict):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_the_case_study_is_complete():
    assert sorted(ORDER) == IDS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_kernelspec_is_sparkmagic_pyspark(path):
    nb = _nb(path)
    assert nb["metadata"]["kernelspec"]["name"] == "pysparkkernel"
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}, "stray notebook metadata"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executed_in_order_with_outputs_committed(path):
    counts = [c["execution_count"] for c in _code_cells(_nb(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts}; re-run it with `make notebooks`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cells_carry_no_stray_metadata(path):
    for cell in _nb(path)["cells"]:
        assert set(cell.get("metadata", {})) <= {"tags"}, cell.get("metadata")
        for output in cell.get("outputs", []):
            assert not output.get("metadata"), "output metadata (e.g. widget state) committed"
            assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_one_parameters_cell_names_the_data(path):
    cells = _code_cells(_nb(path))
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert re.search(r"^DATA = ", _source(tagged[0]), re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_opens_with_configure_that_runs_on_a_shared_cluster(path):
    """No session name (Livy refuses a second live session with the same name: two notebooks,
    a classmate, a retained dead session) and no sizing over the cluster's, except where
    06 teaches executor sizing."""
    cells = _code_cells(_nb(path))
    assert _source(cells[0]).startswith("%%configure -f\n")
    for cell in cells:
        if not _source(cell).startswith("%%configure"):
            continue
        body = json.loads(_source(cell).split("\n", 1)[1])  # a body Livy can parse
        assert "name" not in body, f"a fixed session name: {body}"
        assert "driverMemory" not in body, f"driver memory over the cluster's: {body}"
        if "executorCores" not in body:  # the sizing lesson sets its partitions with its cores
            assert "spark.sql.shuffle.partitions" not in body.get("conf", {}), body


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_ends_by_freeing_only_its_own_session(path):
    """sparkmagic's ``%%cleanup -f`` deletes every session on the endpoint (kernelmagics.py
    ``cleanup``); a kernel shutdown deletes the kernel's own (sparkkernelbase.py
    ``do_shutdown``). The last cell says so instead."""
    nb = _nb(path)
    assert not [c for c in _code_cells(nb) if _source(c).lstrip().startswith("%%cleanup")]
    last = nb["cells"][-1]
    assert last["cell_type"] == "markdown" and "Shut Down Kernel" in _source(last)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_magic_cells_start_with_the_magic(path):
    """sparkmagic sends a cell to Livy unless its first line is the magic: no comments above."""
    for cell in _code_cells(_nb(path)):
        lines = [ln for ln in _source(cell).splitlines() if ln.strip()]
        magics = [i for i, ln in enumerate(lines) if ln.startswith("%%")]
        assert magics in ([], [0]), f"a cell magic must be the first line: {lines[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_long_functions_and_no_absolute_paths(path):
    for cell in _code_cells(_nb(path)):
        src = _source(cell)
        assert not re.search(r"""["'](/|[A-Za-z]:\\)[^"']*["']""", src), f"absolute path: {src}"
        python = "\n".join(ln for ln in src.splitlines() if not ln.startswith("%"))
        if src.startswith("%%") and not src.startswith("%%local"):
            continue
        for node in ast.walk(ast.parse(python)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 15, f"{node.name} is {length} lines: move it into ctr_lab"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_opens_with_objective_and_ends_with_summary(path):
    cells = _nb(path)["cells"]
    assert cells[0]["cell_type"] == "markdown" and "**Objective.**" in _source(cells[0])
    markdown = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    assert any(m.startswith("## Summary") for m in markdown[-3:])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_unbounded_collect_or_to_pandas(path):
    """Cells must work on 40M rows: no collect(); toPandas() only on small aggregates."""
    for cell in _code_cells(_nb(path)):
        src = _source(cell)
        assert ".collect()" not in src
        for line in src.splitlines():
            if ".toPandas()" in line:
                assert re.search(r"click_rate_by|\.limit\(|agg\(", line), line


def test_the_saved_file_comparison_is_nbvals(tmp_path):
    """tests/nbval_compare.py (the browser suite's output check) fails where nbval would."""
    import nbformat

    from ctr_lab.tools.magics import PROGRESS_MIME
    from tests.nbval_compare import differences

    committed = REPO / "notebooks" / "03_model_building.ipynb"
    sanitize = REPO / "notebooks" / "nbval_sanitize.cfg"
    nb = nbformat.read(committed, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    texts = [
        (i, o)
        for i, c in enumerate(cells)
        for o in c.outputs
        if o.output_type == "stream" and re.search(r"0\.\d{3}", o.text)
    ]
    assert texts, "no printed metric in 03 to alter"
    number, output = texts[0]
    # What legitimately differs: a progress display, seconds, a stream split in two.
    cut = re.search(r"0\.\d{3}", output.text).start()
    output.text, tail = output.text[:cut], output.text[cut:]
    cells[number].outputs.append(nbformat.v4.new_output("stream", name=output.name, text=tail))
    cells[0].outputs.append(
        nbformat.v4.new_output("display_data", data={PROGRESS_MIME: {}, "text/plain": "Spark"})
    )
    same = tmp_path / "same.ipynb"
    nbformat.write(nb, same)
    assert differences(same, committed, sanitize) == []
    # What must not: one printed metric, one digit off.
    cells[number].outputs[-1].text = re.sub(
        r"0\.(\d)", lambda m: f"0.{(int(m.group(1)) + 1) % 10}", tail, count=1
    )
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    found = differences(changed, committed, sanitize)
    assert len(found) == 1 and f"cell {number}: outputs differ" in found[0], found


def test_show_of_either_spark_line_compares_equal_and_a_changed_row_does_not(tmp_path):
    """``DataFrame.show()`` ends its table with a blank line on Spark 3.5 and without one on
    Spark 4 (``make notebooks-check-spark4`` compares the same committed outputs): the sanitize
    file makes the two the same, and a row of the table changed still differs."""
    import nbformat

    from tests.nbval_compare import differences

    committed = REPO / "notebooks" / "05_feature_engineering_and_thresholds.ipynb"
    sanitize = REPO / "notebooks" / "nbval_sanitize.cfg"
    nb = nbformat.read(committed, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    shown = [
        o
        for c in cells
        for o in c.outputs
        if o.output_type == "stream" and re.search(r"only showing top \d+ rows\n\n.", o.text)
    ]
    assert shown, "no show() followed by more text in 05"
    spark4 = re.sub(r"(only showing top \d+ rows)\n\n", r"\1\n", shown[0].text, count=1)
    shown[0].text = spark4
    same = tmp_path / "same.ipynb"
    nbformat.write(nb, same)
    assert differences(same, committed, sanitize) == []
    shown[0].text = spark4.replace("|", "!", 3)  # one row of the table, drawn otherwise
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    assert len(differences(changed, committed, sanitize)) == 1


def test_every_sanitize_rule_is_one_nbval_reads():
    """nbval reads a rule only as a ``regex: `` line followed by a ``replace: `` line, each with
    its space (``get_sanitize_patterns``): a rule whose empty replacement lost its trailing
    space would be dropped without a word."""
    from nbval.plugin import get_sanitize_patterns

    text = (REPO / "notebooks" / "nbval_sanitize.cfg").read_text()
    regexes = re.findall(r"(?m)^regex:", text)
    assert len(get_sanitize_patterns(text)) == len(regexes) >= 6


def test_what_ctr_lab_did_in_a_livy_cell_compares_equal_and_a_changed_metric_does_not(tmp_path):
    """On EMR the training cell of 03 prints what ``fit_or_load`` did before its metrics
    (ctr_lab/livy_output.py; the local kernel shows it under the cell, not saved): the
    sanitize file leaves that line out, and a metric changed still differs."""
    import nbformat

    from tests.nbval_compare import differences

    committed = REPO / "notebooks" / "03_model_building.ipynb"
    sanitize = REPO / "notebooks" / "nbval_sanitize.cfg"
    nb = nbformat.read(committed, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    training = [c for c in cells if "train_and_evaluate(" in c.source]
    assert len(training) == 1 and len(training[0].outputs) == 1
    output = training[0].outputs[0]
    metrics = output.text
    said = "fit_or_load: reloaded the saved model from s3://lab/models/course_baseline in 2.1 s\n"
    output.text = said + metrics
    same = tmp_path / "same.ipynb"
    nbformat.write(nb, same)
    assert differences(same, committed, sanitize) == []
    output.text = said + re.sub(r"0\.(\d)", lambda m: f"0.{(int(m.group(1)) + 1) % 10}", metrics)
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    assert len(differences(changed, committed, sanitize)) == 1


#: The ``ctr_lab`` calls that fit models.
FITTING_CALLS = ("train_and_evaluate", "fit_or_load", "tune")


def _literal_length(node: ast.AST) -> int:
    return len(node.elts) if isinstance(node, (ast.List, ast.Tuple)) else 1


def models_fitted(source: str) -> int:
    """How many models a cell fits: each fitting call, times the length of a literal list a
    ``for`` loop around it walks, times the size of a literal ``tune`` grid."""
    if source.lstrip().startswith("%%"):  # a cell magic's body: SQL, %%local, settings
        return 0
    code = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith("%"))

    def count(node: ast.AST, repeat: int) -> int:
        if isinstance(node, ast.For):
            repeat *= _literal_length(node.iter)
        total = 0
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FITTING_CALLS:
                grid = 1
                if name == "tune" and len(node.args) > 2 and isinstance(node.args[2], ast.Dict):
                    for values in node.args[2].values:
                        grid *= _literal_length(values)
                total += repeat * grid
        return total + sum(count(child, repeat) for child in ast.iter_child_nodes(node))

    return count(ast.parse(code), 1)


def test_models_fitted_counts_loops_and_grids():
    assert models_fitted('m, info = cl.train.fit_or_load("recommended", df, "x")') == 1
    loop = "for n in ['a', 'b', 'c']:\n    r = cl.train.train_and_evaluate(df, n)"
    assert models_fitted(loop) == 3
    assert models_fitted('t, g = cl.train.tune(df, "r", {"regParam": [1, 2], "x": [3, 4]})') == 4
    assert models_fitted("df.count()") == 0


def test_the_jupyterlab_math_model_reads_the_forms_checked_in_the_browser():
    """Its examples: a formula, two bare prices, two ``\\$`` prices (both typeset, as
    JupyterLab 4 does), ``\\\\$``, USD and code (none). The browser suite checks the model
    against JupyterLab on every notebook."""
    import doctest

    import tests.lab_markdown_math as model

    result = doctest.testmod(model)
    assert result.attempted >= 4 and result.failed == 0


def test_jupyterlab_typesets_only_the_math_the_notebooks_mean():
    """A price is text: no piece of a Markdown cell that JupyterLab would hand to MathJax (its
    own rule, :mod:`tests.lab_markdown_math`) starts with a digit. Two bare dollar signs in one
    paragraph ("\\$3.20 an hour ... \\$0.05") would be typeset as one formula. Notebook 03's
    log loss, the one formula the notebooks mean, must still be found."""
    from tests.lab_markdown_math import math_spans

    found = {}
    for path in NOTEBOOKS:
        for index, cell in enumerate(_nb(path)["cells"]):
            if cell["cell_type"] == "markdown":
                for span in math_spans(_source(cell)):
                    found.setdefault(span, []).append(f"{path.name} cell {index}")
    prices = {span: where for span, where in found.items() if re.match(r"\$+\s*\d", span)}
    assert not prices, (
        f"JupyterLab would typeset these as LaTeX: {prices}. Fix: write a dollar sign as \\$"
    )
    assert any("p_i" in span for span in found), sorted(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_a_cost_line_comes_before_every_cell_that_fits(path):
    """Before a cell that fits models, the Markdown above it says what that costs on EMR: the
    line ``ctr_lab.tools.emr.fit_cost_line`` gives for the models the cell fits (issue: a
    student should know the price of a cell before running it on the full data)."""
    from ctr_lab.tools.emr import fit_cost_line

    cells = _nb(path)["cells"]
    for index, cell in enumerate(cells):
        fits = models_fitted(_source(cell)) if cell["cell_type"] == "code" else 0
        if not fits:
            continue
        above = cells[index - 1]
        assert above["cell_type"] == "markdown", f"no Markdown above {_source(cell)[:80]!r}"
        assert fit_cost_line(fits) in _source(above), (
            f"the Markdown above {_source(cell)[:80]!r} must end with this line (the cost of its "
            f"{fits} fit(s) as `ctr-lab emr estimate` gives it today):\n{fit_cost_line(fits)}"
        )
