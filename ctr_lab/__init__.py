"""ctr_lab: click-through-rate prediction with logistic regression on Apache Spark.

Notebooks use it as ``import ctr_lab as cl``: ``cl.load(...)``, ``cl.features.with_publisher``,
``cl.evaluate.metrics(...)``, ``cl.plots.roc_curve(...)``. Importing it does not start Spark;
submodules such as ``plots`` (matplotlib) load on first use.
"""

import importlib

from ctr_lab.data import Loaded, LoadReport, click_rate_by, load, read_truth
from ctr_lab.errors import CtrLabError, DataLoadError, SparkSetupError
from ctr_lab.evaluate import log_loss_of
from ctr_lab.session import get_spark

__version__ = "0.1.0"

_SUBMODULES = (
    "data",
    "evaluate",
    "features",
    "plots",
    "samples",
    "schema",
    "session",
    "synth",
    "train",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"ctr_lab.{name}")
    raise AttributeError(f"module 'ctr_lab' has no attribute {name!r}")


__all__ = [
    "CtrLabError",
    "DataLoadError",
    "LoadReport",
    "Loaded",
    "SparkSetupError",
    "__version__",
    "click_rate_by",
    "get_spark",
    "load",
    "log_loss_of",
    "read_truth",
]
