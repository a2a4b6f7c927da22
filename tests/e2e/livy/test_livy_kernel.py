"""The real sparkmagic ``pysparkkernel`` against the Livy test server.

``magics_tour.ipynb`` uses every magic the course notebooks use; its outputs are checked here one
by one (image/png from ``%matplot``, pandas DataFrames from ``-o``, the zip on the driver and the
executors, a remote error as a cell error). ``remote_error.ipynb`` proves that a remote exception
fails an nbval run with the test config.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest
from livy_helpers import call, point_at_zip, run_nbval
from nbclient import NotebookClient

from ctr_lab.tools.casestudy import _cell_seconds

HERE = Path(__file__).resolve().parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: sparkmagic's progress bars (one per Livy statement) carry this MIME type.
WIDGET = "application/vnd.jupyter.widget-view+json"


def execute(nb, kernel: str, cwd: Path) -> nbformat.NotebookNode:
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=600,
        startup_timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    return client.execute()


def by_id(nb, cell_id: str):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def errors(cell) -> list:
    return [o for o in cell.outputs if o.output_type == "error"]


def text_of(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data") and WIDGET not in out.data:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def test_every_magic_through_the_kernel(
    sparkmagic_kernel, sparkmagic_conf_dir, livy_server, livy_zip, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPARKMAGIC_CONF_DIR", str(sparkmagic_conf_dir))
    nb = nbformat.read(HERE / "notebooks" / "magics_tour.ipynb", as_version=4)
    assert point_at_zip(nb, livy_zip) == 1
    nb = execute(nb, sparkmagic_kernel, tmp_path)
    nbformat.write(nb, tmp_path / "magics_tour.executed.ipynb")

    unexpected = {c.id: errors(c) for c in nb.cells if c.cell_type == "code" and c.id != "fails"}
    assert not any(unexpected.values()), unexpected

    # The zip came through pyFiles: the driver imports ctr_lab from it, and so do executors.
    assert livy_zip.name in text_of(by_id(nb, "start"))
    assert livy_zip.name in text_of(by_id(nb, "executors"))
    # %%configure's conf reached the session's Spark config.
    assert text_of(by_id(nb, "data")).split() == ["3", "30"]

    # -o results are pandas DataFrames in the kernel, with the rows Spark computed.
    local = text_of(by_id(nb, "local")).splitlines()
    assert local[0] == (
        "pandas.core.frame DataFrame {'grp': [0, 1, 2], 'n': [10, 10, 10], "
        "'sx': [13.5, 14.5, 15.5]}"
    )
    assert local[1] == "pandas.core.frame DataFrame {'id': [0, 1, 2, 3], 'x': [0.0, 0.1, 0.2, 0.3]}"

    # %matplot arrives as a PNG image.
    images = [o for o in by_id(nb, "matplot").outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert base64.b64decode(images[0].data["image/png"]).startswith(PNG_MAGIC)

    # %json arrives as the JSON value (sparkmagic shows it with display()).
    assert text_of(by_id(nb, "json")) == "{'rows': 30, 'groups': [0, 1, 2]}"

    # The remote KeyError is a cell error naming it; the session survives it.
    (error,) = errors(by_id(nb, "fails"))
    assert error.ename == "SparkStatementException"
    assert "KeyError" in "\n".join(error.traceback) + error.evalue
    assert "5" in text_of(by_id(nb, "after_error"))

    # %%cleanup -f deleted the session on the server.
    assert call(f"{livy_server.url}/sessions")[1]["sessions"] == []


def test_a_session_is_deleted_without_waiting_for_the_heartbeat(
    sparkmagic_kernel, sparkmagic_conf_dir, livy_server, tmp_path, monkeypatch
):
    """``%%cleanup -f`` right after a session started returns in seconds, not half a minute.

    sparkmagic's ``LivySession.delete`` (``%%cleanup``, ``%%configure -f`` once a session runs,
    closing the kernel) joins the session's heartbeat thread, which sleeps
    ``heartbeat_refresh_seconds`` between its calls to Livy (``livysession.py``,
    ``_HeartbeatThread.run`` and ``stop``). With sparkmagic's 30 s this cell waited about 30 s:
    the thread had just made its first call. The student template sets 5 s.
    """
    monkeypatch.setenv("SPARKMAGIC_CONF_DIR", str(sparkmagic_conf_dir))
    cells = ["1 + 1", "%%cleanup -f"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb = execute(nb, sparkmagic_kernel, tmp_path)
    started, cleanup = nb.cells
    assert not errors(started) and not errors(cleanup), [errors(c) for c in nb.cells]
    assert "2" in text_of(started)
    seconds = _cell_seconds(cleanup)
    assert seconds is not None and seconds < 15, f"%%cleanup -f took {seconds} s"


def test_remote_errors_fail_the_nbval_run(
    sparkmagic_kernel, sparkmagic_conf_dir, livy_server, tmp_path
):
    nb_path = tmp_path / "remote_error.ipynb"
    nb_path.write_bytes((HERE / "notebooks" / "remote_error.ipynb").read_bytes())
    run = run_nbval(nb_path, sparkmagic_kernel, sparkmagic_conf_dir, tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 1, report
    # The raising cell and the %matplot without a figure failed; the session start and the
    # clean-up passed.
    assert "2 failed, 2 passed" in report, report
    assert "IndexError" in report and "list index out of range" in report, report
    # Livy answers a %matplot of a missing variable with status ok and the error as its data
    # (fake_shell.py magic_matplot); sparkmagic then fails the cell looking for text/plain.
    assert "KeyError: 'text/plain'" in re.sub(r"\x1b\[[0-9;]*m", "", report), report


@pytest.fixture(autouse=True)
def _no_session_left(livy_server):
    """Each kernel test ends with %%cleanup -f; nothing may stay behind on the server."""
    yield
    assert call(f"{livy_server.url}/sessions")[1]["sessions"] == []
