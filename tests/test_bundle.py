"""The pyFiles zip: the package at its root, the same bytes every build, importable alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import ctr_lab
from ctr_lab.tools.bundle import build_zip, package_dir, sha256_of


def test_zip_holds_every_module_at_the_root(tmp_path):
    path = build_zip(tmp_path)
    assert path.name == f"ctr_lab-{ctr_lab.__version__}.zip"
    names = set(zipfile.ZipFile(path).namelist())
    modules = {f"ctr_lab/{p.name}" for p in package_dir().glob("*.py")}
    assert modules <= names
    assert "ctr_lab/log4j2.properties" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_zip_bytes_depend_on_the_sources_only(tmp_path):
    first = sha256_of(build_zip(tmp_path / "a"))
    second = sha256_of(build_zip(tmp_path / "b"))
    assert first == second


def test_a_python_without_ctr_lab_imports_it_from_the_zip(tmp_path):
    path = build_zip(tmp_path)
    probe = (
        "import ctr_lab, ctr_lab.schema as s; print(ctr_lab.__file__); print(len(s.RAW_COLUMNS))"
    )
    # -S and a neutral folder: neither site-packages (the editable install) nor the checkout is
    # on the path.
    without = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert without.returncode != 0 and "No module named 'ctr_lab'" in without.stderr
    with_zip = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(path)!r}); {probe}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    origin, columns = with_zip.stdout.split()
    assert origin.startswith(str(path))
    assert columns == "24"
