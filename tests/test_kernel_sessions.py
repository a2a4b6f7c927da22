"""The local kernel's sessions follow sparkmagic's: a refused ``%%configure -f`` leaves none.

sparkmagic's ``%%configure -f`` deletes the running session before it asks Livy for the new
one, and a session Livy refuses sets the kernel's fatal error: every later Spark cell fails
until the kernel restarts (``kernelmagics.py`` ``configure`` and
``_do_not_call_start_session``). A student who learned here that a bad ``%%configure`` keeps the
old session would lose work on EMR.
"""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="the Jupyter stack is in the lab environment")
nbclient = pytest.importorskip("nbclient", reason="the Jupyter stack is in the lab environment")

CELLS = [
    '%%configure -f\n{"conf": {"spark.sql.shuffle.partitions": "2"}}',
    "kept = 41\nkept + 1",
    '%%configure -f\n{"driverMemroy": "1g"}',
    "kept",
    '%%configure -f\n{"conf": {"spark.sql.shuffle.partitions": "2"}}',
    "1 + 1",
]


def _errors(cell) -> str:
    return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


def _text(cell) -> str:
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "execute_result":
            parts.append(o.data.get("text/plain", ""))
    return "".join(parts)


def test_a_refused_configure_leaves_no_session_until_restart(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ctr_lab.tools.magics import KERNEL_NAME

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        pytest.fail(f"no {KERNEL_NAME!r} kernel: run `ctr-lab kernel install --sys-prefix`")
    assert "ctr_lab.tools.magics" in spec.argv, "the local kernel, not sparkmagic's"
    monkeypatch.setenv("CTR_LAB_PROGRESS", "0")
    monkeypatch.setenv("CTR_LAB_SPARK_UI", "false")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=600,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    cells = nb.cells
    assert "42" in _text(cells[1]) and not _errors(cells[1])
    assert "driverMemroy" in _errors(cells[2])
    # The old session is gone, and the kernel refuses Spark cells until it restarts, even
    # after a good %%configure.
    for index in (3, 5):
        assert "restart the kernel" in _errors(cells[index]), cells[index].outputs
        assert "41" not in _text(cells[index]) and "2" not in _text(cells[index])
