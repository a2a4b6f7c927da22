"""The remote-side Python of the end-to-end suites really lacks ``ctr_lab`` (see conftest)."""

import subprocess


def test_remote_python_has_pyspark_but_not_ctr_lab(remote_python, tmp_path):
    ok = subprocess.run(
        [str(remote_python), "-c", "import pyspark; print(pyspark.__version__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ok.stdout.strip()[:1] in {"3", "4"}
    missing = subprocess.run(
        [str(remote_python), "-c", "import ctr_lab"], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "No module named 'ctr_lab'" in missing.stderr
