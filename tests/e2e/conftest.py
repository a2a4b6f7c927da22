"""Shared by the end-to-end suites: a Python like a cluster node's, which lacks ``ctr_lab``.

On EMR, Livy's REPL and the executors run a Python that has PySpark, pandas and numpy but not the
student's checkout; ``ctr_lab`` reaches them only as a zip in ``pyFiles``. The test environment
has ``ctr_lab`` installed (editable), so these suites run the remote side in a second virtual
environment that sees the same site-packages folder through a plain path line in a ``.pth`` file.
A path line adds the folder without running the ``.pth`` files inside it, so the editable
install's import hook never loads and ``import ctr_lab`` fails there, as on a fresh cluster.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest


def make_python_without_ctr_lab(dest: Path) -> Path:
    """Create a venv at ``dest`` that sees this environment's packages except ``ctr_lab``."""
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(dest)
    python = dest / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    Path(purelib, "lab_site_packages.pth").write_text(here + "\n")
    return python


@pytest.fixture(scope="session")
def driver_java_options(short_lived_jit) -> str:
    """JVM options for the suites' Spark drivers: the lab's class-data archive, C1 only.

    Each driver here lives for one notebook or one fault: the C2 compiler's work on the second
    core does not pay off in that time. With C1 only (``-XX:TieredStopAtLevel=1``) four
    notebooks through the Livy suite took 65 CPU seconds instead of 106, and 86 s instead of 95
    alone (BENCHMARKS.md, The test suite); the results are the same (Java 17's floating point is
    strict whatever compiles the code). The lab's long-lived drivers (a notebook kernel, the unit
    tests' session) keep both compilers: there C2 pays.
    """
    from ctr_lab.session import java_options

    return f"{java_options()} {short_lived_jit}".strip()


@pytest.fixture(scope="session")
def remote_python(tmp_path_factory) -> Path:
    """The interpreter for Livy's REPL and for executors: PySpark yes, ``ctr_lab`` no."""
    python = make_python_without_ctr_lab(tmp_path_factory.mktemp("remote-venv"))
    probe = subprocess.run(
        [str(python), "-c", "import pyspark, pandas; import ctr_lab"],
        cwd=tmp_path_factory.getbasetemp(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'ctr_lab'" in probe.stderr, (
        f"the remote Python must have PySpark and pandas but not ctr_lab; it printed "
        f"{probe.stderr[-500:]!r} (interpreter {sys.executable})"
    )
    return python
