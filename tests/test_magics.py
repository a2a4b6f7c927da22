"""The local kernel keeps sparkmagic's and Livy's rules (checked against sparkmagic's own code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctr_lab.tools.magics import (
    KERNEL_NAME,
    SESSION_KEYS,
    LocalSession,
    SparkStatementException,
    livy_rejection,
    progress_line,
    records_to_dataframe,
    remove_old_kernel,
    route,
    run_statement,
    sparkmagic_path,
)

REPO = Path(__file__).resolve().parents[1]

CELLS = [
    "x = 1\nx + 1",
    "%%local\nprint(df.shape)",
    "%local\nprint(1)",
    "%%info",
    "%info",
    "%%cleanup -f",
    "%%spark -o df",
    "%%spark -o df\ndf = spark.range(3)",
    "%%send_to_spark -i name -t str -n remote_name",
    "%%sql -o t -q\nSELECT 1",
    '%%configure -f\n{"driverMemory": "2g"}',
    "%matplot plt",
    "",
    "# a comment above a magic\n%%sql\nSELECT 1",
]


@pytest.mark.parametrize("code", CELLS)
def test_routing_agrees_with_sparkmagics_user_code_parser(code):
    parser = pytest.importorskip("sparkmagic.kernels.wrapperkernel.usercodeparser")
    expected = parser.UserCodeParser().get_code_to_run(code)
    where, to_run = route(code)
    assert to_run == expected
    assert (where == "local") == code.startswith(("%%local", "%local"))


def test_last_statement_is_echoed_and_prints_are_captured():
    ns: dict = {}
    assert run_statement("x = 40\nprint('hello')\nx + 2", ns) == {"text/plain": "hello\n42"}
    assert run_statement("y = x", ns) == {"text/plain": ""}
    assert ns["y"] == 40
    # Only the last statement echoes, as in Livy's REPL (a bare expression earlier is silent).
    assert run_statement("x\nx * 2", ns) == {"text/plain": "80"}
    assert run_statement("for i in range(2):\n    i", ns) == {"text/plain": "0\n1"}


def test_a_wide_table_shows_as_a_plain_python_shows_it(monkeypatch):
    """Livy's REPL is a plain Python process, where pandas fits a wide table to the terminal
    (``...`` and its shape); a Jupyter kernel wraps it whole. The reference is a plain Python."""
    import pandas as pd

    monkeypatch.setenv("COLUMNS", "80")  # the same terminal width on both sides
    table = "pd.DataFrame([[0.123456] * 9], columns=[f'column_{i}' for i in range(9)])"
    code = f"import pandas as pd\n{table}"
    plain = subprocess.run(
        [sys.executable, "-c", f"import pandas as pd\nprint(repr({table}))"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout.rstrip()
    assert "..." in plain  # the terminal fitting is what is compared
    with pd.option_context("display.max_columns", 20):  # as a Jupyter kernel's pandas has it
        assert run_statement(code, {}) == {"text/plain": plain}
        assert pd.get_option("display.max_columns") == 20  # and keeps afterwards


def test_stderr_is_part_of_the_text_like_livy():
    out = run_statement("import sys\nprint('out')\nprint('err', file=sys.stderr)", {})
    assert out == {"text/plain": "out\nerr"}


def test_an_exception_fails_with_the_users_frames_only():
    with pytest.raises(SparkStatementException) as info:
        run_statement("a = 1\nb = a / 0", {})
    err = info.value
    assert (err.ename, err.evalue) == ("ZeroDivisionError", "division by zero")
    text = "".join(err.tb_lines)
    assert 'File "<stdin>", line 2' in text and "magics.py" not in text
    rendered = err._render_traceback_()
    assert rendered[:2] == ["An error was encountered:", "division by zero"]


def _library_frames(lines) -> list:
    return [line for line in lines if "/pyspark/" in line or "/py4j/" in line]


def test_a_misspelt_column_is_one_message_and_the_cells_line(spark):
    """A student's most common Spark mistake: a column name that does not exist. Spark's
    message names it and the columns meant; PySpark's own frames and the query's plan, printed
    twice, buried it in a page of red."""
    from pyspark.errors import AnalysisException

    with pytest.raises(AnalysisException) as direct:
        spark.range(3).select("nope")
    params = direct.value.getMessageParameters()
    with pytest.raises(SparkStatementException) as info:
        run_statement("df = spark.range(3)\ndf.select('nope')", {"spark": spark})
    err = info.value
    rendered = err._render_traceback_()
    assert err.ename == "AnalysisException"
    condition = getattr(direct.value, "getCondition", direct.value.getErrorClass)()  # 4.x: renamed
    assert condition in err.evalue and "\n" not in err.evalue
    assert params["objectName"] in err.evalue and params["proposal"] in err.evalue
    assert rendered[3].strip() == 'File "<stdin>", line 2, in <module>', rendered
    assert not _library_frames(rendered), rendered
    assert not [line for line in rendered if "Range (0, 3" in line], rendered  # the plan
    assert len(rendered) <= 6, rendered


def test_a_job_that_fails_in_the_jvm_says_why_without_the_java_stack(spark):
    """A job that fails on the JVM's side raises Py4J's error, whose text is the Java stack
    trace of the task and of the driver: a hundred lines around the one that says why."""
    with pytest.raises(SparkStatementException) as info:
        run_statement(
            "spark.range(1).selectExpr(\"raise_error('no clicks here')\").collect()",
            {"spark": spark},
        )
    rendered = info.value._render_traceback_()
    assert "no clicks here" in info.value.evalue and "\n" not in info.value.evalue
    assert not [line for line in rendered if line.lstrip().startswith("at ")], rendered
    assert not _library_frames(rendered), rendered
    assert len(rendered) <= 6, rendered


def test_a_magics_argument_is_what_follows_the_first_space_as_in_livy():
    """fake_shell.py ``MagicNode``: ``%json  d`` names `` d``, which fails on EMR, so here too."""
    with pytest.raises(SparkStatementException) as info:
        run_statement("d = {'a': 1}\n%json  d", {})
    assert info.value.ename == "KeyError" and info.value.evalue == "' d'"
    assert run_statement("d = {'a': 1}\n%json d", {}) == {"application/json": {"a": 1}}


def test_matplot_between_code_lines_returns_a_png():
    pytest.importorskip("matplotlib")
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.plot([1, 2])\n%matplot plt"
    )
    out = run_statement(code, {})
    assert set(out) == {"image/png"}
    assert out["image/png"].startswith(b"\x89PNG\r\n\x1a\n")


def test_json_magic_and_unknown_magic():
    ns: dict = {"d": {"a": 1}}
    assert run_statement("%json d", ns) == {"application/json": {"a": 1}}
    with pytest.raises(SparkStatementException, match="unknown magic command 'tabel'"):
        run_statement("x = 1\n%tabel d", ns)


def test_a_syntax_error_without_magics_is_an_error():
    with pytest.raises(SparkStatementException) as info:
        run_statement("def f(:\n  pass", {})
    assert info.value.ename == "SyntaxError"


def test_records_parse_like_sparkmagic():
    utils = pytest.importorskip("sparkmagic.utils.utils")
    records = [json.dumps({"b": 2, "a": "x"}), json.dumps({"c": 1.5, "b": 3, "a": "y"})]
    ours = records_to_dataframe(records)
    theirs = utils.records_to_dataframe("\n".join(records), "pyspark", False)
    assert list(ours.columns) == list(theirs.columns) == ["c", "b", "a"]
    assert ours.equals(theirs)
    assert records_to_dataframe([]).empty


def test_configure_maps_livy_settings_to_local_spark(monkeypatch):
    session = LocalSession()
    session.configs = {
        "name": "lab",
        "driverMemory": "3g",
        "executorCores": 1,
        "numExecutors": 1,
        "conf": {"spark.sql.shuffle.partitions": 6},
    }
    master, app_name, settings = session.spark_settings()
    assert (master, app_name) == ("local[1]", "lab")
    assert settings == {"spark.sql.shuffle.partitions": "6", "spark.driver.memory": "3g"}
    assert {"pyFiles", "conf", "driverMemory", "executorCores", "name"} <= set(SESSION_KEYS)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"driverMemroy": "1g"}, "unknown session setting(s) ['driverMemroy']"),
        ({"name": "2024"}, "all-digit session name"),
        ({"executorCores": "two"}, "executorCores must be a JSON integer"),
        ({"numExecutors": "3"}, "numExecutors must be a JSON integer such as 2, not '3'"),
        ({"numExecutors": 1.5}, "numExecutors must be a JSON integer"),
        ({"driverCores": True}, "driverCores must be a JSON integer"),
        ({"heartbeatTimeoutInSecond": "soon"}, "heartbeatTimeoutInSecond must be an integer"),
        ({"conf": {"spark.submit.deployMode": "client"}}, "spark.submit.deployMode"),
    ],
)
def test_configure_bodies_livy_refuses(body, fragment):
    """The 400s and 500s of Livy 0.8 (CreateInteractiveRequest.scala, Session.scala,
    InteractiveSession.scala ``create``): the local kernel refuses the same bodies, so a notebook
    that passes here is not refused on EMR."""
    assert fragment in livy_rejection(body)


def test_configure_bodies_livy_accepts():
    for body in (
        {},
        {"executorCores": 2, "numExecutors": 3, "name": "lab-1", "conf": {}},
        {"heartbeatTimeoutInSecond": "60"},
        {"heartbeatTimeoutInSecond": 60.5},
    ):
        assert livy_rejection(body) is None


# -- installing the kernels ---------------------------------------------------------------------


def _spec(monkeypatch, *path):
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(str(p) for p in path))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(path[-1]))  # not the machine's user folder
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    return KernelSpecManager().get_kernel_spec(KERNEL_NAME)


def test_the_notebooks_open_with_the_local_kernel_and_the_livy_tests_get_sparkmagics(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("sparkmagic")
    pytest.importorskip("jupyter_client")
    from ctr_lab.tools.cli import main

    old = tmp_path / "share" / "jupyter" / "kernels" / "ctr-lab"
    old.mkdir(parents=True)
    (old / "kernel.json").write_text(json.dumps({"argv": ["python", "-m", "ctr_lab.magics"]}))
    assert main(["kernel", "install", "--prefix", str(tmp_path), "--sparkmagic"]) == 0
    said = capsys.readouterr().out
    assert f"removed the kernel an earlier version installed: {old}" in said
    assert not old.exists()
    # The kernelspec the committed notebooks declare is the one the local kernel takes.
    declared = json.loads((REPO / "notebooks" / "00_setup.ipynb").read_text())
    assert declared["metadata"]["kernelspec"]["name"] == KERNEL_NAME == "pysparkkernel"
    local = _spec(monkeypatch, tmp_path / "share" / "jupyter")
    assert local.argv[1:3] == ["-m", "ctr_lab.tools.magics"]
    # Its display name too: JupyterLab writes the running kernel's into an open notebook, and
    # another one marked every notebook changed as it opened ("Save your work" on closing it).
    assert local.display_name == declared["metadata"]["kernelspec"]["display_name"]
    livy = _spec(monkeypatch, sparkmagic_path(str(tmp_path)), tmp_path / "share" / "jupyter")
    assert "sparkmagic.kernels.pysparkkernel.pysparkkernel" in livy.argv
    assert livy.display_name == "PySpark (Livy/EMR, sparkmagic)"


def test_a_kernel_of_another_project_named_ctr_lab_stays(tmp_path):
    other = tmp_path / "kernels" / "ctr-lab"
    other.mkdir(parents=True)
    (other / "kernel.json").write_text(json.dumps({"argv": ["other", "-m", "thing"]}))
    assert remove_old_kernel(str(tmp_path / "kernels" / KERNEL_NAME)) is None
    assert other.exists()


def test_progress_line_names_job_stage_and_tasks():
    running = {"done": False, "job": 3, "stage": 7, "tasks_done": 5, "tasks": 8, "seconds": 2.4}
    assert progress_line(running) == "Spark: job 3, stage 7: 5/8 tasks (2 s)"
    done = {"done": True, "jobs": 1, "stages": 1, "tasks_done": 4, "seconds": 0.31}
    assert progress_line(done) == "Spark: 1 job, 1 stage, 4 tasks in 0.3 s"


class _CountingTracker:
    """Spark's status tracker, counting what is asked of it."""

    def __init__(self, tracker) -> None:
        self.tracker, self.asked = tracker, []

    def __getattr__(self, name):
        def call(*args):
            self.asked.append(name)
            return getattr(self.tracker, name)(*args)

        return call


@pytest.mark.tools
def test_progress_asks_about_an_ended_job_once(spark):
    # A fit runs hundreds of jobs: an update that asked about each of them again would cost more
    # the longer the cell runs (a notebook with fits ran a third slower in the browser).
    from types import SimpleNamespace

    from ctr_lab.tools.magics import _Progress

    sc = spark.sparkContext
    counting = _CountingTracker(sc.statusTracker())
    session = SimpleNamespace(
        started=True,
        spark=SimpleNamespace(sparkContext=SimpleNamespace(statusTracker=lambda: counting)),
    )
    cached, fresh = _Progress(session), _Progress(session)
    cached.group = fresh.group = "test-progress-asks-once"
    sc.setJobGroup(cached.group, "twelve jobs")
    try:
        for n in range(12):
            sc.parallelize(range(n + 4), 2).count()  # one job of two tasks
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    cached._wait_until_ended()
    first = cached._state(done=True)
    counting.asked.clear()
    again = cached._state(done=True)
    assert "getJobInfo" not in counting.asked and "getStageInfo" not in counting.asked
    without_cache = fresh._state(done=True)
    for state in (again, without_cache):
        assert {k: v for k, v in state.items() if k != "seconds"} == {
            k: v for k, v in first.items() if k != "seconds"
        }
    assert (first["jobs"], first["tasks_done"]) == (12, 24)
