"""The local kernel, installed as ``ctr-lab kernel install`` does, runs a sparkmagic notebook."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ctr_lab.tools.magics import (
    DRIVER_ENDED,
    KERNEL_NAME,
    PROGRESS_MIME,
    RUN_FROM_THE_TOP,
    SESSION_ENDED,
)
from tests import out_of_heap

nbformat = pytest.importorskip("nbformat", reason="the Jupyter stack is in the lab environment")
nbclient = pytest.importorskip("nbclient", reason="the Jupyter stack is in the lab environment")

CELLS = [
    '%%configure -f\n{"executorCores": 1, "conf": {"spark.sql.shuffle.partitions": "3"}}',
    "secret = 41\n"
    'print(spark.conf.get("spark.sql.shuffle.partitions"), sc.defaultParallelism)\n'
    "secret + 1",
    '%%local\ntry:\n    secret\nexcept NameError:\n    print("not here")',
    'df = spark.range(4).selectExpr("id", "id * 2 AS twice")',
    "%%spark -o df",
    '%%local\nprint(type(df).__name__, df["twice"].tolist())',
    "%%sql -o q -q\nSELECT 7 AS seven",
    "%%local\nprint(q.iloc[0, 0])",
    "%%send_to_spark -i q -t df -n q_remote",
    'q_remote.first()["seven"]',
    "import matplotlib.pyplot as plt\nfig = plt.figure()\nplt.plot([1, 2])\n%matplot plt",
    "1 / 0",
    "%%local\nimport matplotlib.pyplot as plt\nplt.plot([3, 1])\nprint(len(plt.get_fignums()))",
    "sc.parallelize(range(100), 4).count()",
    "import logging\n"
    'logging.getLogger("ctr_lab.train").info("fit_or_load: trained in 1.0 s, saved to m")\n'
    "sc.parallelize(range(10), 3).count()\nsc.parallelize(range(10), 2).sum()",
    "mx = spark._jvm.java.lang.management.ManagementFactory\n"
    'hotspot = spark._jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")\n'
    "print(sorted(b.getName() for b in mx.getGarbageCollectorMXBeans()))\n"
    'print(mx.getPlatformMXBean(hotspot).getVMOption("G1PeriodicGCInterval").getValue())',
    "%%cleanup -f",
    "secret + 1",
    "%%cleanup -f",
]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _execute(sources, folder, allow_errors: bool = True) -> list:
    """The cells of a notebook of ``sources``, run by the local kernel in ``folder``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in sources]
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=600,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return nb.cells


@pytest.fixture(scope="module")
def executed(tmp_path_factory, monkeypatch_module):
    return _execute(CELLS, tmp_path_factory.mktemp("kernel"))


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    """The kernel, installed by the command line into a folder first on Jupyter's path."""
    prefix = tmp_path_factory.mktemp("prefix")
    command = [sys.executable, "-m", "ctr_lab.tools", "kernel", "install", "--prefix", str(prefix)]
    subprocess.run(command, check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        mp.setenv("CTR_LAB_PROGRESS", "1")
        mp.setenv("CTR_LAB_SPARK_UI", "false")
        yield mp


def test_plain_cells_run_in_the_spark_session_with_configured_settings(executed):
    text = _text(executed[1])
    assert text.startswith("Starting Spark application\n")
    assert text.endswith("SparkSession available as 'spark'.\n3 1\n42")


def test_local_cells_do_not_see_spark_session_variables(executed):
    assert _text(executed[2]) == "not here\n"


def test_output_transfers_arrive_as_pandas(executed):
    assert _text(executed[5]) == "DataFrame [0, 2, 4, 6]\n"
    assert executed[6].outputs == []  # -q: nothing displayed
    assert _text(executed[7]) == "7\n"
    assert _text(executed[9]) == "7"


def test_matplot_displays_a_png(executed):
    images = [o for o in executed[10].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1


def test_local_cells_show_the_figures_they_draw(executed):
    outputs = executed[12].outputs
    assert _text(executed[12]) == "1\n"
    assert [o.data["image/png"][:8] for o in outputs if "image/png" in o.get("data", {})] == [
        "iVBORw0K"  # base64 of the PNG signature
    ]


def test_a_remote_error_fails_the_cell(executed):
    errors = [o for o in executed[11].outputs if o.output_type == "error"]
    assert [(e.ename, e.evalue) for e in errors] == [
        ("SparkStatementException", "ZeroDivisionError: division by zero")
    ]


def _progress(cell) -> list:
    return [o.data[PROGRESS_MIME] for o in cell.outputs if PROGRESS_MIME in o.get("data", {})]


def test_progress_ends_as_a_summary_of_the_cells_spark_jobs(executed):
    # One job of one stage with a task per partition; then two jobs, 3 + 2 partitions.
    (one,) = _progress(executed[13])
    assert (one["done"], one["jobs"], one["stages"], one["tasks_done"]) == (True, 1, 1, 4)
    (two,) = _progress(executed[14])
    assert (two["jobs"], two["stages"], two["tasks_done"]) == (2, 2, 5)
    text = [
        o.data["text/plain"] for o in executed[14].outputs if PROGRESS_MIME in o.get("data", {})
    ]
    assert text[0].startswith("Spark: 2 jobs, 2 stages, 5 tasks in ")
    # What the library logged during the cell follows the summary.
    assert text[0].endswith(" s\nfit_or_load: trained in 1.0 s, saved to m")


def test_no_widgets_and_no_progress_where_spark_runs_no_job(executed):
    assert _progress(executed[1]) == []  # settings only: no job
    for cell in executed:
        for output in cell.outputs:
            assert not any(
                k.startswith("application/vnd.jupyter.widget") for k in output.get("data", {})
            )


def test_the_kernels_own_driver_runs_g1_with_a_collection_when_idle(executed):
    # A driver JVM of the kernel's own collects with G1, which returns the heap an idle JVM
    # no longer uses, every 30 s (the throughput collector's beans are "PS Scavenge" and
    # "PS MarkSweep", and it keeps its peak heap). A kernel in a shared driver runs as that
    # JVM started (tests/test_casestudy.py: every notebook's session in one JVM).
    names, interval = _text(executed[15]).splitlines()
    assert "G1 Young Generation" in names and "PS Scavenge" not in names
    assert interval == "30000"


def test_a_cell_after_the_session_ended_says_to_run_from_the_top(executed):
    cell = executed[17]
    assert SESSION_ENDED in _text(cell)
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    assert error.ename == "SparkStatementException"
    assert error.evalue.startswith("NameError: name 'secret' is not defined")
    assert error.evalue.endswith(RUN_FROM_THE_TOP)


RESTARTS = [
    '%%configure -f\n{"executorCores": 1, "conf": {"spark.sql.shuffle.partitions": "3"}}',
    "kept = 1\nprint(spark._jvm.java.lang.ProcessHandle.current().pid(), sc.defaultParallelism)",
    '%%configure -f\n{"executorCores": 2, "conf": {"spark.sql.shuffle.partitions": "3"}}',
    "print(spark._jvm.java.lang.ProcessHandle.current().pid(), sc.defaultParallelism)\n"
    'print("kept" in dir())',
    '%%configure -f\n{"executorCores": 2, "driverMemory": "1g"}',
    "print(spark._jvm.java.lang.ProcessHandle.current().pid(), sc.defaultParallelism)\n"
    'print(spark.conf.get("spark.driver.memory"))',
    "%%cleanup -f",
]


def test_configure_starts_a_new_jvm_only_for_settings_read_at_jvm_start(
    tmp_path, monkeypatch_module
):
    cells = _execute(RESTARTS, tmp_path, allow_errors=False)
    first = _text(cells[1]).split()[-2:]
    second = _text(cells[3]).split()[-3:]
    third = _text(cells[5]).split()[-3:]
    # Threads changed: a new session (variables gone) in the same JVM.
    assert first[1] == "1" and second[1:] == ["2", "False"] and second[0] == first[0]
    # Driver memory changed: a new JVM with it.
    assert third[0] != first[0] and third[1:] == ["2", "1g"]


DRIVER_LOST = [
    f'%%configure -f\n{{"driverMemory": "{out_of_heap.DRIVER_MEMORY}"}}',
    f'kept = 1\nspark.range(1).selectExpr("{out_of_heap.EXPRESSION}").collect()',
    'print(spark.range(3).count(), "kept" in dir())',
    # Under an aggregate, in a stage of its own: when a %%sql result's last stage runs out of
    # heap, the thread that feeds the rows to Python dies instead, and Spark waits on it.
    f"%%sql\nSELECT max(n) FROM (SELECT {out_of_heap.EXPRESSION} AS n FROM range(1))",
    "print(spark.range(4).count())",
    "%%cleanup -f",
]


def test_a_driver_that_runs_out_of_heap_is_named_with_the_fix_and_the_next_cell_runs(
    tmp_path, monkeypatch_module, capfd
):
    # In local mode the task's OutOfMemoryError ends the driver JVM; before, the cell failed
    # with ConnectionRefusedError and so did every later cell, `print(1)` too.
    cells = _execute(DRIVER_LOST, tmp_path)
    # The JVM's own account, on the kernel's standard error (Jupyter's console), twice.
    assert capfd.readouterr().err.count("java.lang.OutOfMemoryError: Java heap space") == 2
    for failed, after, printed in [(1, 2, "3 False"), (3, 4, "4")]:  # a cell, then a %%sql cell
        (error,) = [o for o in cells[failed].outputs if o.output_type == "error"]
        assert error.evalue.startswith(
            "SparkDriverEnded: The local Spark driver ran out of memory "
            '(spark.driver.memory=512m) and ended. Fix: "driverMemory": "1g" in the '
            "%%configure -f cell at the top"
        ), error.evalue
        cell = cells[after]
        assert not [o for o in cell.outputs if o.output_type == "error"]
        assert DRIVER_ENDED in _text(cell)
        assert _text(cell).rstrip().endswith(printed)  # a new session, without old variables
