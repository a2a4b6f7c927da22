"""Every notebook in ``notebooks/`` through the real sparkmagic kernel and the Livy test server.

Each notebook runs under ``pytest --nbval-lax`` in a subprocess, with the test sparkmagic config
(``all_errors_are_fatal``: any remote error fails its cell). The notebooks are run as a student
runs them on EMR; the harness changes two things in a temporary copy, and nothing else:

* ``ctr_lab`` comes from the zip the project builds, through ``pyFiles``: the config's
  ``session_configs_defaults.pyFiles`` (the student template names the ``s3://`` zip there), and
  any ``ctr_lab*.zip`` a ``%%configure`` body names, are pointed at the local zip;
* after the cell tagged ``parameters``, a cell tagged ``injected-parameters`` sets ``MODEL_DIR``
  and ``DATA_CACHE`` to the checkout's ``build/models`` and ``build/data``, the way papermill
  injects parameters: the folders the local runs keep (``make run``, the browser suite, which
  ``make test`` runs first), so a model trained once is reloaded here, as the lab promises a
  student. Fits through Livy itself still run here (06 and whatever no earlier run saved), in
  ``test_livy_resume.py`` and in ``test_livy_kernel.py``.

``nbval_checks.py`` also fails a ``%matplot`` cell that shows no image (sparkmagic only prints
that error). Committed sample names in ``DATA`` resolve on the remote side through
``CTR_LAB_DATA_SAMPLES``, set through ``spark.yarn.appMasterEnv.*`` (the server, like YARN,
exports those to the driver).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Dict, List

import nbformat
import pytest
from livy_helpers import REPO, call, point_at_zip, run_nbval

NOTEBOOKS = sorted(
    p for p in (REPO / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)


def _without_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.startswith("%"))


def inject_parameters(nb, values: Dict[str, str]) -> List[str]:
    """Insert, after the ``parameters`` cell, a cell assigning those of ``values`` it defines."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            assigned = {
                target.id
                # A %%local parameters cell (its values reach Spark by %%send_to_spark) parses
                # once its magic line is set aside.
                for node in ast.parse(_without_magics(cell.source)).body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            names = [name for name in values if name in assigned]
            if names:
                source = "\n".join(f"{name} = {values[name]!r}" for name in names)
                new = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
                nb.cells.insert(index + 1, new)
            return names
    return []


@pytest.fixture(scope="session")
def notebook_run_dir(tmp_path_factory) -> Path:
    """One folder for the whole run: the notebooks' working folders and nbval's settings."""
    return tmp_path_factory.mktemp("notebook-run")


@pytest.fixture(scope="session")
def notebook_conf_dir(sparkmagic_conf_dir, tmp_path_factory) -> Path:
    """The test config plus the remote driver's CTR_LAB_DATA_SAMPLES."""
    config = json.loads((sparkmagic_conf_dir / "config.json").read_text())
    conf = config["session_configs_defaults"].setdefault("conf", {})
    conf["spark.yarn.appMasterEnv.CTR_LAB_DATA_SAMPLES"] = str(REPO / "data_samples")
    conf_dir = tmp_path_factory.mktemp("sparkmagic-notebooks")
    (conf_dir / "config.json").write_text(json.dumps(config, indent=2))
    return conf_dir


def test_there_are_notebooks_to_run():
    assert NOTEBOOKS, f"no notebooks under {REPO / 'notebooks'}: the Livy suite has nothing to run"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[str(p.relative_to(REPO)) for p in NOTEBOOKS])
def test_notebook_runs_through_sparkmagic(
    notebook, sparkmagic_kernel, notebook_conf_dir, livy_zip, livy_server, notebook_run_dir
):
    nb = nbformat.read(notebook, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == sparkmagic_kernel, (
        f"{notebook} must use the '{sparkmagic_kernel}' kernelspec"
    )
    point_at_zip(nb, livy_zip)
    inject_parameters(
        nb,
        {"MODEL_DIR": str(REPO / "build" / "models"), "DATA_CACHE": str(REPO / "build" / "data")},
    )
    work = notebook_run_dir / notebook.relative_to(REPO / "notebooks").parent
    work.mkdir(parents=True, exist_ok=True)
    copy = work / notebook.name
    nbformat.write(nb, copy)
    run = run_nbval(copy, sparkmagic_kernel, notebook_conf_dir, notebook_run_dir)
    # nbval kills its kernel, so sparkmagic cannot delete the session as a kernel shutdown does
    # (the notebooks end by asking the student for that shutdown): the harness frees it, rather
    # than leaving a Spark driver for the heartbeat timeout while the next notebook starts.
    for session in call(f"{livy_server.url}/sessions")[1]["sessions"]:
        call(f"{livy_server.url}/sessions/{session['id']}", "DELETE")
    assert run.returncode == 0, f"{notebook} failed through sparkmagic:\n{run.stdout[-8000:]}"
