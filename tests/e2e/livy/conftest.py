"""Fixtures of the Livy suite: the test server, the ``ctr_lab`` zip and the sparkmagic config.

The helpers they use live in ``livy_helpers.py``; test modules import from there (a module name
of its own, unlike ``conftest``, which other suites also use).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # livy_server, livy_helpers

from livy_helpers import KERNEL, derive_test_config, load_template
from livy_server import LivyTestServer

# ----------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def livy_zip(tmp_path_factory) -> Path:
    """The pyFiles zip the project builds for EMR."""
    from ctr_lab.tools.bundle import build_zip

    return build_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def livy_server(remote_python, livy_zip, tmp_path_factory) -> Iterator[LivyTestServer]:
    """One server for the suite; on teardown no REPL, JVM or worker of it may survive.

    Livy's default session timeout (1 h): sessions of kernels that nbval hard-kills go after the
    sparkmagic heartbeat (60 s). The zip's folder is in ``livy.file.local-dir-whitelist``, so
    its ``file://`` URI is accepted, as an admin could allow it on a cluster.
    """
    server = LivyTestServer(
        remote_python,
        tmp_path_factory.mktemp("livy"),
        idle_timeout=3600,
        local_dir_whitelist=(livy_zip.parent,),
    )
    server.start()
    yield server
    server.stop()
    left = server.leftover_processes()
    assert not left, f"processes of the Livy test server survived its shutdown: {left}"


@pytest.fixture(scope="session")
def sparkmagic_conf_dir(livy_server, livy_zip, tmp_path_factory) -> Path:
    """A SPARKMAGIC_CONF_DIR holding the test config derived from the student template."""
    conf_dir = tmp_path_factory.mktemp("sparkmagic")
    config = derive_test_config(load_template(), livy_server.url, livy_zip)
    (conf_dir / "config.json").write_text(json.dumps(config, indent=2))
    return conf_dir


@pytest.fixture(scope="session")
def sparkmagic_kernel() -> Iterator[str]:
    """sparkmagic's kernelspec, from the folder ``ctr-lab kernel install --sparkmagic`` fills.

    Jupyter's own path has the local kernel under the same name; that folder goes first on
    ``JUPYTER_PATH`` (here and in the kernels and nbval runs this suite starts).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ctr_lab.tools.magics import sparkmagic_path

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "JUPYTER_PATH",
            os.pathsep.join(filter(None, [sparkmagic_path(), os.environ.get("JUPYTER_PATH")])),
        )
        try:
            spec = KernelSpecManager().get_kernel_spec(KERNEL)
        except NoSuchKernel:
            spec = None
        if spec is None or "sparkmagic" not in " ".join(spec.argv):
            pytest.fail(
                f"no sparkmagic '{KERNEL}' kernelspec in {sparkmagic_path()}; install it with "
                f"`{sys.prefix}/bin/ctr-lab kernel install --sys-prefix --sparkmagic`"
            )
        yield KERNEL
