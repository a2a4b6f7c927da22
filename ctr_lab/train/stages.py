"""The custom pipeline stages of the named pipelines.

Spark reloads a saved stage by importing its module: these classes must stay in this module
(``ctr_lab.train.stages``) for saved models to load.
"""

from __future__ import annotations

import math
from typing import Any, Dict

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ctr_lab.errors import CtrLabError
from ctr_lab.features import (
    with_all_row_features,
)
from ctr_lab.persistence import ParamsReadable, ParamsWritable

_WEIGHT_COL = "class_weight"


class RowFeatures(Transformer, ParamsReadable, ParamsWritable):
    """Pipeline stage applying :func:`ctr_lab.features.with_all_row_features`.

    It learns nothing; as the first stage it lets a saved model score raw canonical rows.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> df = spark.createDataFrame(
    ...     [(datetime(2014, 10, 26, 13, tzinfo=timezone.utc), "85f751fd", "c4e18dd6", "50e219e0",
    ...       "a1", "ad1", "ac1", "a99f214a", "ip1", "m1", -1)],
    ...     "event_time timestamp, site_id string, site_domain string, site_category string, "
    ...     "app_id string, app_domain string, app_category string, "
    ...     "device_id string, device_ip string, device_model string, C20 int",
    ... )
    >>> RowFeatures().transform(df).columns[-3:]
    ['is_app', 'user', 'C20_level']
    """

    timeCol: Param[str] = Param(
        Params._dummy(), "timeCol", "the event timestamp column", TypeConverters.toString
    )
    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(self, *, timeCol: str = "event_time") -> None:
        super().__init__()
        self._setDefault(timeCol="event_time")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return with_all_row_features(dataset, time_col=self.getOrDefault(self.timeCol))


class _WeightParams(Params):
    positiveWeight: Param[float] = Param(
        Params._dummy(),
        "positiveWeight",
        "weight of a click relative to a non-click during fitting (> 0)",
        TypeConverters.toFloat,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(positiveWeight=1.0)

    def getPositiveWeight(self) -> float:
        """Gets the value of positiveWeight or its default value."""
        return float(self.getOrDefault(self.positiveWeight))


class ClassWeighter(Transformer, _WeightParams, ParamsReadable, ParamsWritable):
    """Add a weight column: ``positiveWeight`` for clicks, 1 otherwise (1 when there is no label).

    Examples
    --------
    >>> df = spark.createDataFrame([(1,), (0,)], "label int")
    >>> [r.class_weight for r in ClassWeighter(positiveWeight=3.0).transform(df).collect()]
    [3.0, 1.0]
    """

    labelCol: Param[str] = Param(Params._dummy(), "labelCol", "label", TypeConverters.toString)
    weightCol: Param[str] = Param(Params._dummy(), "weightCol", "output", TypeConverters.toString)
    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(
        self, *, positiveWeight: float = 1.0, labelCol: str = "label", weightCol: str = _WEIGHT_COL
    ) -> None:
        super().__init__()
        self._setDefault(labelCol="label", weightCol=_WEIGHT_COL)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        label = self.getOrDefault(self.labelCol)
        out = self.getOrDefault(self.weightCol)
        if label not in dataset.columns:  # scoring unlabeled rows: the weight is unused
            return dataset.withColumn(out, F.lit(1.0))
        w = F.when(F.col(label) == 1, F.lit(self.getPositiveWeight())).otherwise(F.lit(1.0))
        return dataset.withColumn(out, w)


def _recalibrated(df: DataFrame, w: float, threshold: float) -> DataFrame:
    shift = math.log(w)
    margin = vector_to_array(F.col("rawPrediction"))[1] - F.lit(shift)
    p = vector_to_array(F.col("probability"))[1]
    q = p / (p + (F.lit(1.0) - p) * F.lit(w))
    return df.withColumns(
        {
            "rawPrediction": array_to_vector(F.array(-margin, margin)),
            "probability": array_to_vector(F.array(F.lit(1.0) - q, q)),
            "prediction": (q > F.lit(threshold)).cast("double"),
        }
    )


def recalibrate(pred_df: DataFrame, w: float, threshold: float = 0.5) -> DataFrame:
    """Undo a class weight ``w`` on clicks (or keeping 1/w of non-clicks) in scored rows.

    A model fitted with clicks weighted ``w`` estimates odds ``w`` times too high; the honest
    probability is ``q = p / (p + w (1 - p))``, the margin minus ``ln w``. Keeping a fraction
    ``r`` of the non-clicks is the same as ``w = 1 / r``, which gives the textbook form
    ``q = p / (p + (1 - p) / r)`` (:func:`balanced_sample` returns that ``w``).
    ``probability``, ``rawPrediction`` and ``prediction`` (``q > threshold``) are rewritten.

    Examples
    --------
    A model fitted with clicks weighted 3 says 0.5; the honest probability is 0.5 / (0.5 + 1.5):

    >>> from pyspark.ml.linalg import Vectors
    >>> df = spark.createDataFrame(
    ...     [(Vectors.dense([0.0, 0.0]), Vectors.dense([0.5, 0.5]), 1.0)],
    ...     ["rawPrediction", "probability", "prediction"],
    ... )
    >>> row = recalibrate(df, 3.0).first()
    >>> round(row.probability[1], 4), row.prediction
    (0.25, 0.0)
    """
    if not w > 0:
        raise CtrLabError(f"recalibrate: weight {w} must be > 0")
    return _recalibrated(pred_df, float(w), threshold)


class ProbabilityRecalibrator(Transformer, _WeightParams, ParamsReadable, ParamsWritable):
    """Pipeline stage doing :func:`recalibrate` after a class-weighted LogisticRegression."""

    threshold: Param[float] = Param(
        Params._dummy(), "threshold", "click when q > threshold", TypeConverters.toFloat
    )
    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(self, *, positiveWeight: float = 1.0, threshold: float = 0.5) -> None:
        super().__init__()
        self._setDefault(threshold=0.5)
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return _recalibrated(
            dataset, self.getPositiveWeight(), float(self.getOrDefault(self.threshold))
        )
