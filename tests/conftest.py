"""Shared fixtures: one local Spark session for the whole run, and the real third-party samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
