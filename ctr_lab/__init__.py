"""ctr_lab: click-through-rate prediction with logistic regression on Apache Spark.

Notebooks use it as ``import ctr_lab as cl``: ``cl.load(...)``, ``cl.features.with_publisher``,
``cl.evaluate.metrics(...)``, ``cl.plots.roc_curve(...)``. Importing it does not start Spark;
everything loads on first use, so ``import ctr_lab`` needs neither PySpark nor pandas (a machine
that only runs ``ctr-lab emr`` or the generator has neither). In a Livy session it shows what
it did in the cells' output (:mod:`ctr_lab.livy_output`).
"""

import importlib

from ctr_lab.livy_output import show_in_cells

__version__ = "0.1.0"

#: Public names re-exported here, and the submodule each one lives in.
_EXPORTS = {
    "Loaded": "data",
    "LoadReport": "data",
    "click_rate_by": "data",
    "load": "data",
    "read_truth": "data",
    "CtrLabError": "errors",
    "DataLoadError": "errors",
    "SparkSetupError": "errors",
    "log_loss_of": "evaluate",
    "lab_location": "fs",
    "get_spark": "session",
}

#: The core modules. The tools that work on the core (the ``ctr-lab`` command, the notebook
#: runner, the local kernel, the JVM archive, the benchmarks, the EMR helpers, the generator)
#: live in :mod:`ctr_lab.tools`, which nothing here imports and which executors never get.
_SUBMODULES = (
    "assignment",
    "data",
    "errors",
    "evaluate",
    "exercises",
    "features",
    "fs",
    "grading",
    "hashing",
    "persistence",
    "plots",
    "samples",
    "schema",
    "session",
    "train",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"ctr_lab.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ctr_lab.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ctr_lab' has no attribute {name!r}")


show_in_cells()


__all__ = [
    "CtrLabError",
    "DataLoadError",
    "LoadReport",
    "Loaded",
    "SparkSetupError",
    "__version__",
    "click_rate_by",
    "get_spark",
    "lab_location",
    "load",
    "log_loss_of",
    "read_truth",
]
