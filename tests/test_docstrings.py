"""Every docstring example in the package runs, against one shared local Spark session.

Examples see ``spark`` (the session fixture) and ``tmp_path`` (a fresh folder per module) and run
from the repository root, so ``cl.load("course_10k", spark)`` finds the committed sample.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ctr_lab"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Any spelling of the directive that turns an example off.
SKIP_DIRECTIVE = re.compile(r"doctest:\s*[^\n]*\+SKIP")
# An example line that names the session: its module's examples run Spark.
USES_SPARK = re.compile(r"^\s*(>>>|\.\.\.) .*\bspark\b", re.M)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = sorted(PACKAGE.rglob("*.py"))
# Chosen by text, not by import, so collecting the tests imports nothing; a module whose ">>>" sits
# outside a docstring would then fail below for finding no example, which is what we want.
WITH_EXAMPLES = [_module_name(p) for p in SOURCES if ">>>" in p.read_text(encoding="utf-8")]
# Only these take the session, and so carry the `spark` mark; the others (pure functions) run
# without starting a JVM. All carry the `examples` mark: `make unit-spark4` leaves them out
# (tests/conftest.py says why).
NEEDS_SPARK = {_module_name(p) for p in SOURCES if USES_SPARK.search(p.read_text(encoding="utf-8"))}
pytestmark = pytest.mark.examples


def test_modules_with_examples_are_found():
    # Guards the text filter above: the core and the tools layer both hold examples.
    assert {"ctr_lab.evaluate", "ctr_lab.train", "ctr_lab.tools.emr"} <= set(WITH_EXAMPLES)


def test_no_example_is_skipped():
    skipped = [
        f"{p.relative_to(REPO)}:{n}"
        for p in SOURCES
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if SKIP_DIRECTIVE.search(line)
    ]
    assert not skipped, f"examples switched off with +SKIP (make them run instead): {skipped}"


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.spark) if n in NEEDS_SPARK else n for n in WITH_EXAMPLES],
)
def test_examples_run(name, request, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")  # no display; figures render in memory
    monkeypatch.chdir(REPO)
    spark = request.getfixturevalue("spark") if name in NEEDS_SPARK else None
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(
        module, name, extraglobs={"spark": spark, "tmp_path": tmp_path}
    )
    tests = [t for t in tests if t.examples]
    assert tests, f"{name}: its source holds '>>>' but doctest finds no example"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    try:
        for test in sorted(tests, key=lambda t: t.name):
            runner.run(test, out=report.append)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
        if spark is not None:
            spark.catalog.clearCache()  # what examples cached must not outlive them
    assert runner.failures == 0, "".join(report)
