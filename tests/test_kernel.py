"""The installed ``ctr-lab`` Jupyter kernel runs a sparkmagic-style notebook end to end."""

from __future__ import annotations

import pytest

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
    "%%cleanup -f",
]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture(scope="module")
def executed(tmp_path_factory, monkeypatch_module):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("ctr-lab")
    except NoSuchKernel:
        pytest.fail("kernel 'ctr-lab' is not installed: run `ctr-lab kernel install --sys-prefix`")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    folder = tmp_path_factory.mktemp("kernel")
    client = nbclient.NotebookClient(
        nb,
        kernel_name="ctr-lab",
        timeout=600,
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return nb.cells


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
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


def test_progress_bar_shows_while_spark_runs(executed):
    widget = "application/vnd.jupyter.widget-view+json"
    assert any(widget in o.get("data", {}) for o in executed[1].outputs)


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
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in RESTARTS]
    client = nbclient.NotebookClient(
        nb, kernel_name="ctr-lab", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    first = _text(nb.cells[1]).split()[-2:]
    second = _text(nb.cells[3]).split()[-3:]
    third = _text(nb.cells[5]).split()[-3:]
    # Threads changed: a new session (variables gone) in the same JVM.
    assert first[1] == "1" and second[1:] == ["2", "False"] and second[0] == first[0]
    # Driver memory changed: a new JVM with it.
    assert third[0] != first[0] and third[1:] == ["2", "1g"]
