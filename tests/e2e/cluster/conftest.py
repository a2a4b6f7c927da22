"""Fixtures of the cluster suite: the standalone cluster, the pyFiles zip and driver processes.

The cluster's master and workers are started once per session and killed at the end, with a
check that no process of theirs (executors and Python workers included) is left running.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List

import pytest
from cluster_support import ROWS, SAVE_ROWS, Driver, StandaloneCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A running standalone cluster: a master and two 1-core workers on 127.0.0.1."""
    standalone = StandaloneCluster(tmp_path_factory.mktemp("standalone"))
    try:
        standalone.start()
    except BaseException:
        print(standalone.log_tail(), file=sys.stderr)
        standalone.stop()
        raise
    yield standalone
    left = standalone.stop()
    assert not left, f"processes left after stopping the cluster: {left}"


@pytest.fixture(scope="session")
def ctr_lab_zip(tmp_path_factory) -> Path:
    """The pyFiles zip EMR gets, built by ctr_lab.tools.bundle.build_zip."""
    from ctr_lab.tools.bundle import build_zip

    return build_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory) -> str:
    """ROWS generated rows in the raw Kaggle format (the format of EMR's train.gz)."""
    from ctr_lab.tools.synth import write_dataset

    path = tmp_path_factory.mktemp("cluster-data") / "avazu_raw.csv.gz"
    write_dataset(path, rows=ROWS, seed=5)
    return str(path)


@pytest.fixture(scope="session")
def save_csv(tmp_path_factory) -> str:
    """SAVE_ROWS generated rows, as ``sample_csv``: for the faults that cut a save short."""
    from ctr_lab.tools.synth import write_dataset

    path = tmp_path_factory.mktemp("save-data") / "avazu_raw.csv.gz"
    write_dataset(path, rows=SAVE_ROWS, seed=5)
    return str(path)


@pytest.fixture(scope="session")
def start_driver(
    remote_python, ctr_lab_zip, sample_csv, driver_java_options, short_lived_jit, tmp_path_factory
):
    """Start ``cluster_driver.py`` with a spec; ``master``, ``zip`` and ``data`` (unless the spec
    names its own) filled in."""
    started: List[Driver] = []

    # As the Livy test server does (livy_server.py): the administrators' JVM option, with the
    # lab's class-data archive (its classes load from the archive; about 20 s less per driver
    # here) and C1 only (the drivers are short-lived; tests/e2e/conftest.py).
    # The executors live for the two fits: C1 only saves them CPU as well (the suite: 103 s ->
    # 88 s alone, 164 -> 129 CPU seconds).
    archive = {
        "spark.driver.defaultJavaOptions": driver_java_options,
        "spark.executor.defaultJavaOptions": short_lived_jit,
    }

    def start(master: str, name: str, **spec: Any) -> Driver:
        full = {"master": master, "zip": str(ctr_lab_zip), "data": sample_csv, **spec}
        full["conf"] = {**archive, **spec.get("conf", {})}
        driver = Driver(remote_python, full, tmp_path_factory.mktemp(name))
        started.append(driver)
        return driver

    yield start
    for driver in started:
        if driver.proc.poll() is None:
            driver.kill()
