"""ctr_lab: click-through-rate prediction with logistic regression on Apache Spark.

Notebooks use it as ``import ctr_lab as cl``. Importing it does not start Spark.
"""

from ctr_lab.data import Loaded, LoadReport, click_rate_by, load, read_truth
from ctr_lab.errors import CtrLabError, DataLoadError, SparkSetupError
from ctr_lab.evaluate import log_loss_of
from ctr_lab.session import get_spark

__version__ = "0.1.0"

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
