"""Shared fixtures: one local Spark session for the whole run, and the real third-party samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPARK_MARK = "spark"


def pytest_addoption(parser):
    parser.addoption(
        "--spark-only",
        action="store_true",
        help="run only the tests that run Spark (the `spark` fixture or the `spark` mark): "
        "those whose outcome can depend on the Spark version (`make unit-spark4`)",
    )


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the session; with --spark-only, keep the marked tests alone."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(SPARK_MARK)
    if not config.getoption("--spark-only"):
        return
    kept = [item for item in items if item.get_closest_marker(SPARK_MARK)]
    dropped = [item for item in items if not item.get_closest_marker(SPARK_MARK)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


REAL_SAMPLES = REPO.parent / "shared" / "real_samples"


@pytest.fixture(scope="session")
def spark():
    """A local Spark session built by ctr_lab's own get_spark(), with test-sized settings."""
    os.environ.setdefault("CTR_LAB_MASTER", "local[2]")
    os.environ.setdefault("CTR_LAB_DRIVER_MEMORY", "2g")
    os.environ.setdefault("CTR_LAB_SHUFFLE_PARTITIONS", "4")
    os.environ.setdefault("CTR_LAB_SPARK_UI", "false")
    from ctr_lab.session import get_spark

    session = get_spark("ctr-lab-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The folder of real public samples; tests that need it skip where it is absent."""
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not present at {REAL_SAMPLES}")
    return REAL_SAMPLES
