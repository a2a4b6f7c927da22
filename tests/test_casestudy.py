"""``ctr-lab run``: notebook order and the headline lines its table collects."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctr_lab.evaluate import headline
from ctr_lab.tools import casestudy
from ctr_lab.tools.casestudy import _HEADLINE, ORDER, ordered_notebooks

nbformat = pytest.importorskip("nbformat", reason="the Jupyter stack is in the lab environment")

REPO = Path(__file__).resolve().parents[1]


def test_the_case_study_runs_in_the_documented_order():
    found = [
        p.relative_to(REPO / "notebooks").as_posix() for p in ordered_notebooks(REPO / "notebooks")
    ]
    assert found == list(ORDER)


def test_the_checkouts_notebooks_are_found_from_any_folder(tmp_path, monkeypatch):
    """`ctr-lab run` from outside the checkout runs the checkout's notebooks."""
    monkeypatch.chdir(tmp_path)
    assert casestudy.notebooks_dir() == REPO / "notebooks"


def test_headline_lines_round_trip_through_the_pattern():
    line = headline("recommended", {"log_loss": 0.404312, "auc": 0.76271, "test_rows": 5180})
    assert line == "recommended: test log loss 0.4043, AUC 0.7627 (5,180 test rows)"
    match = _HEADLINE.search("load report ...\n" + line)
    assert match and (match["name"], match["log_loss"], match["auc"]) == (
        "recommended",
        "0.4043",
        "0.7627",
    )


def test_committed_notebooks_print_the_headlines_the_table_shows():
    """03 and 04 print the course's and the recommended model's numbers as headline lines, with
    the constant click-rate predictor's (04 also the course's random split and the tuned model,
    each on its own line)."""

    def names(rel):
        return set(casestudy.headlines(nbformat.read(REPO / "notebooks" / rel, as_version=4).cells))

    assert names("03_model_building.ipynb") == {"course_baseline", "constant_click_rate"}
    assert names("04_model_improvement.ipynb") == {
        "course_baseline",
        "course_improved",
        "recommended",
        "constant_click_rate",
        "course_improved_random_split",
        "recommended_tuned",
    }


def test_a_missing_kernel_is_a_one_line_error(capsys):
    from ctr_lab.tools.cli import main

    assert main(["run", "--kernel", "no-such-kernel", "--only", "00_"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no Jupyter kernel named 'no-such-kernel'" in err and "ctr-lab kernel install" in err


def test_slowest_cells_come_from_the_recorded_timestamps():
    import nbformat

    nb = nbformat.v4.new_notebook()
    spans = [("a = 1", "00.000000", "01.500000"), ("b = 2", "02.000000", "09.400000")]
    for source, start, end in spans:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["execution"] = {
            "iopub.execute_input": f"2026-01-01T10:00:{start}Z",
            "shell.execute_reply": f"2026-01-01T10:00:{end}Z",
        }
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell("never ran"))
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# title"))

    assert casestudy.slowest_cells(nb) == [
        {"cell": 2, "source": "b = 2", "seconds": 7.4},
        {"cell": 1, "source": "a = 1", "seconds": 1.5},
    ]


def _notebook(path: Path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


PID = "print(spark._jvm.java.lang.ProcessHandle.current().pid())"
EXERCISE = 'import ctr_lab as cl\nx = None\ncl.exercises.check("03-log-loss", x, [(1, 0.5)])'


def test_sparkmagics_kernel_under_the_notebooks_name_is_a_one_line_error(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("sparkmagic")
    from ctr_lab.tools.cli import main
    from ctr_lab.tools.magics import install_sparkmagic, sparkmagic_path

    install_sparkmagic(str(tmp_path))
    monkeypatch.setenv("JUPYTER_PATH", sparkmagic_path(str(tmp_path)))  # what the Livy tests see
    assert main(["run", "--only", "00_", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'pysparkkernel' here is sparkmagic's" in err and "kernel install --sys-prefix" in err


def test_run_starts_every_notebook_in_one_driver_jvm(tmp_path, monkeypatch, capsys):
    from ctr_lab.tools.cli import main

    monkeypatch.setenv("CTR_LAB_SPARK_UI", "false")
    configure = '%%configure -f\n{"driverMemory": "1g", "executorCores": 1}'
    _notebook(tmp_path / "nb" / "a.ipynb", [configure, PID, "import os\nos._exit(1)"])
    _notebook(
        tmp_path / "nb" / "sub" / "b.ipynb",
        [configure, PID + '\nspark.range(2).write.parquet("written")', "%%cleanup -f"],
    )
    _notebook(
        tmp_path / "nb" / "c.ipynb",
        ['%%configure -f\n{"driverMemory": "768m"}', PID, EXERCISE, "%%cleanup -f"],
    )
    c = nbformat.read(tmp_path / "nb" / "c.ipynb", as_version=4)
    c.cells[2].metadata["tags"] = ["exercise"]
    nbformat.write(c, tmp_path / "nb" / "c.ipynb")
    solution = EXERCISE.replace("x = None", "x = -math.log(0.5)")
    (tmp_path / "nb" / "solutions.py").write_text(f"# %% 03-log-loss\nimport math\n{solution}\n")
    out = tmp_path / "out"
    assert main(["run", "--notebooks", str(tmp_path / "nb"), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    # c ran in its solution version (the default): the check passed.
    checked = nbformat.read(out / "notebooks" / "c.ipynb", as_version=4).cells[2]
    assert "".join(o.get("text", "") for o in checked.outputs).rstrip().endswith("pass."), checked
    pids = []
    for name in ("a", "sub/b", "c"):
        cell = nbformat.read(out / "notebooks" / f"{name}.ipynb", as_version=4).cells[1]
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
        pids.append(int(text.split()[-1]))
    # a died with its session running; the run stopped it, and b started in the same JVM,
    # with relative paths from b's own folder. c asked for other driver memory: its own JVM.
    assert printed.count("stopped the Spark session it left running") == 1
    assert pids[0] == pids[1] != pids[2]
    assert (tmp_path / "nb" / "sub" / "written" / "_SUCCESS").is_file()
    assert "a.ipynb" in printed and "FAILED" in printed


def test_only_matching_no_notebook_says_so_and_lists_the_names(capsys):
    from ctr_lab.tools.cli import main

    root = REPO / "notebooks"
    assert main(["run", "--notebooks", str(root), "--only", "zzz"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"ctr-lab: error: --only zzz matched no notebook under {root}. Fix: ")
    for path in ordered_notebooks(root):
        assert path.relative_to(root).as_posix() in err
