"""Shared fixtures: one local Spark session for the whole run, and the real third-party samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPARK_MARK = "spark"
#: Tests of a tool (ctr_lab.tools): tools run in the lab environment (PySpark 3.5) only.
TOOLS_MARK = "tools"
#: Tests that run Spark to check ctr_lab's own bookkeeping (which saved model the store loads,
#: copies or sweeps; what a search keeps; which copy of the data a load reads), not how Spark
#: behaves: Spark's saving and loading, which they call, is checked on PySpark 4 by the pipelines'
#: own save-and-reload tests and the kept-copy loads that stay in that pass.
OWN_LOGIC_MARK = "own_logic"
#: The documentation's examples (tests/test_docstrings.py). They show the lab's environment
#: (PySpark 3.5, as on EMR 7), where students read and run them; the ``ctr_lab`` functions they
#: call are checked on PySpark 4 by their own tests (test_data, test_features, test_train,
#: test_evaluate, test_plots), which stay in that pass.
EXAMPLES_MARK = "examples"


def pytest_addoption(parser):
    parser.addoption(
        "--spark-only",
        action="store_true",
        help="run only the tests of the core that run Spark (the `spark` fixture or the `spark` "
        "mark, and none of the `tools`, `own_logic` and `examples` marks): those whose outcome "
        "can depend on the Spark version (`make unit-spark4`)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{TOOLS_MARK}: tests a tool of ctr_lab.tools (the benchmark harness), which runs in the "
        "lab environment only, so `make unit-spark4` leaves it out",
    )
    config.addinivalue_line(
        "markers",
        f"{OWN_LOGIC_MARK}: runs Spark to check ctr_lab's own bookkeeping, whose outcome the Spark "
        "version does not change, so `make unit-spark4` leaves it out",
    )
    config.addinivalue_line(
        "markers",
        f"{EXAMPLES_MARK}: runs the documentation's examples, which show the lab environment "
        "(PySpark 3.5), so `make unit-spark4` leaves them out",
    )


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the session; with --spark-only, keep the core's Spark tests."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(SPARK_MARK)
    if not config.getoption("--spark-only"):
        return

    def version_dependent(item) -> bool:
        if not item.get_closest_marker(SPARK_MARK):
            return False
        lab_only = (TOOLS_MARK, OWN_LOGIC_MARK, EXAMPLES_MARK)
        return not any(item.get_closest_marker(m) for m in lab_only)

    kept = [item for item in items if version_dependent(item)]
    dropped = [item for item in items if not version_dependent(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


REAL_SAMPLES = REPO.parent / "shared" / "real_samples"


@pytest.fixture(scope="session")
def spark():
    """A local Spark session built by ctr_lab's own get_spark(), with test-sized settings.

    Two shuffle partitions, one per core: the tests' data are thousands of rows, where each
    shuffle's tasks are scheduling more than work (8 % of the Spark tests' time with four;
    BENCHMARKS.md, "The test suite"), and two still split every group-by, join and window.
    """
    os.environ.setdefault("CTR_LAB_MASTER", "local[2]")
    os.environ.setdefault("CTR_LAB_DRIVER_MEMORY", "2g")
    os.environ.setdefault("CTR_LAB_SHUFFLE_PARTITIONS", "2")
    os.environ.setdefault("CTR_LAB_SPARK_UI", "false")
    from ctr_lab.session import get_spark

    session = get_spark("ctr-lab-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def short_lived_jit() -> str:
    """The JIT option of the suites' short-lived JVMs: the C1 compiler only.

    A Spark driver that lives for one command, one notebook or one fault does not live long
    enough for the C2 compiler's work on the second core to pay off (BENCHMARKS.md, The test
    suite); results are the same (Java 17's floating point is strict whatever compiles the code).
    The long-lived JVMs keep both compilers: the ``spark`` fixture's session, the browser
    suite's shared driver, and every driver the product starts for a student.
    """
    return "-XX:TieredStopAtLevel=1"


@pytest.fixture(autouse=True)
def _short_lived_child_drivers(request, monkeypatch, short_lived_jit):
    """The Spark drivers a unit test's child processes start (the CLI, the grader) run C1 only.

    Spark's launcher adds ``SPARK_SUBMIT_OPTS`` to the driver's JVM options
    (``SparkSubmitCommandBuilder.buildSparkSubmitCommand``). The ``spark`` fixture's session is
    session-scoped, so pytest starts it before this function-scoped setting exists. The
    end-to-end suites set their drivers' options themselves (``tests/e2e/conftest.py``): the
    browser's shared driver is long-lived.
    """
    if "e2e" in request.path.relative_to(REPO).parts:
        return
    inherited = os.environ.get("SPARK_SUBMIT_OPTS", "")
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", f"{inherited} {short_lived_jit}".strip())


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The folder of real public samples; tests that need it skip where it is absent."""
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not present at {REAL_SAMPLES}")
    return REAL_SAMPLES
