"""Every notebook in ``notebooks/`` through the real sparkmagic kernel, on an EMR-like "cluster".

Each notebook runs unchanged under ``pytest --nbval`` in a subprocess: no injected parameters, no
rewritten paths. The Livy test server runs in its EMR-like mode (``emr_livy_server`` in
``conftest.py``): the lab's bucket filled by ``ctr-lab emr upload``, the cluster's settings those
``ctr-lab emr create --bucket`` asks for, so the parameters cell finds the data, model and cache
folders in ``s3://`` as it would on EMR, and ``ctr_lab`` reaches the driver only as the zip in the
bucket, named by the sparkmagic config that ``upload`` put there (``all_errors_are_fatal``: any
remote error fails its cell).

Every output is compared with the committed one (the local kernel's), sanitized with
``notebooks/nbval_sanitize.cfg`` as the local runs are, so a student on EMR sees the same
rounded numbers as on a laptop. ``nbval_checks.py`` leaves sparkmagic's progress widgets out of
the comparison and fails a ``%matplot`` cell that shows no image (sparkmagic only prints that
error).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from livy_helpers import REPO, call, run_nbval

NOTEBOOKS = sorted(
    p for p in (REPO / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)


@pytest.fixture(scope="session")
def notebook_run_dir(tmp_path_factory) -> Path:
    """One folder for the whole run: the notebooks' working folders and nbval's settings."""
    return tmp_path_factory.mktemp("notebook-run")


def test_there_are_notebooks_to_run():
    assert NOTEBOOKS, f"no notebooks under {REPO / 'notebooks'}: the Livy suite has nothing to run"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[str(p.relative_to(REPO)) for p in NOTEBOOKS])
def test_notebook_runs_through_sparkmagic(
    notebook, sparkmagic_kernel, emr_sparkmagic_conf_dir, emr_livy_server, notebook_run_dir
):
    nb = nbformat.read(notebook, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == sparkmagic_kernel, (
        f"{notebook} must use the '{sparkmagic_kernel}' kernelspec"
    )
    work = notebook_run_dir / notebook.relative_to(REPO / "notebooks").parent
    work.mkdir(parents=True, exist_ok=True)
    copy = work / notebook.name
    copy.write_bytes(notebook.read_bytes())
    run = run_nbval(copy, sparkmagic_kernel, emr_sparkmagic_conf_dir, notebook_run_dir, strict=True)
    said = []
    # nbval kills its kernel, so sparkmagic cannot delete the session as a kernel shutdown does
    # (the notebooks end by asking the student for that shutdown): the harness frees it, rather
    # than leaving a Spark driver for the heartbeat timeout while the next notebook starts.
    for session in call(f"{emr_livy_server.url}/sessions")[1]["sessions"]:
        said += _what_ctr_lab_said(emr_livy_server.url, session["id"])
        call(f"{emr_livy_server.url}/sessions/{session['id']}", "DELETE")
    assert run.returncode == 0, f"{notebook} failed through sparkmagic:\n{run.stdout[-8000:]}"
    # The sanitize file leaves these lines out of the comparison: the student sees them.
    assert len([line for line in said if line.startswith("fit_or_load: ")]) >= _saved(nb), said


def _saved(nb) -> int:
    """The calls in ``nb``'s code that save or reload a model: ``fit_or_load``, and
    ``train_and_evaluate`` given a ``model_dir`` (without one it fits and keeps nothing)."""
    calls = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.source.lstrip().startswith("%%"):
            continue
        code = "\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith("%"))
        for node in ast.walk(ast.parse(code)):
            name = getattr(getattr(node, "func", None), "attr", "")
            keywords = {k.arg for k in getattr(node, "keywords", [])}
            calls += name == "fit_or_load" or (
                name == "train_and_evaluate" and "model_dir" in keywords
            )
    return calls


def _what_ctr_lab_said(url: str, session: int) -> list:
    """The lines of a session's statement outputs in which ctr_lab says what it did."""
    statements = call(f"{url}/sessions/{session}/statements")[1]["statements"]
    texts = [(s.get("output") or {}).get("data", {}).get("text/plain", "") for s in statements]
    return [ln for t in texts for ln in t.splitlines() if ln.startswith(("fit_or_load:", "tune:"))]
