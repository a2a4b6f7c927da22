"""The pyFiles zip: the package at its root, the same bytes every build, importable alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import ctr_lab
from ctr_lab.tools.bundle import build_zip, package_dir, sha256_of


def test_zip_holds_the_core_and_no_tool(tmp_path):
    path = build_zip(tmp_path)
    assert path.name == f"ctr_lab-{ctr_lab.__version__}.zip"
    names = set(zipfile.ZipFile(path).namelist())
    root = package_dir()
    core = {
        f"ctr_lab/{p.relative_to(root).as_posix()}"
        for p in root.rglob("*.py")
        if p.relative_to(root).parts[0] != "tools"
    }
    assert {"ctr_lab/train/pipelines.py", "ctr_lab/train/stages.py"} <= core
    assert names == core | {"ctr_lab/log4j2.properties"}
    assert not [n for n in names if n.startswith("ctr_lab/tools")]


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
