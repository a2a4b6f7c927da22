"""Splits, named model pipelines, tuning and train-once model storage for CTR logistic regression.

Everything here takes the canonical DataFrame that :func:`ctr_lab.load` returns.

Splits and sampling
    :func:`time_split` (the last calendar days, UTC, as test: how a CTR model is used),
    :func:`hash_split` (the same rows on any cluster), :func:`random_split`,
    :func:`stratified_sample` (``sampleBy``, not the course's ``orderBy(rand()).limit()``) and
    :func:`balanced_sample`.
Pipelines by name
    :func:`build_pipeline` and :data:`PIPELINES`: ``course_baseline`` (CTR_03),
    ``course_improved`` (CTR_04/05 done right) and ``recommended`` (hashed features). The row
    transforms of :mod:`ctr_lab.features` run *inside* each pipeline, as its first stage
    (:class:`RowFeatures`), so a saved ``PipelineModel`` scores raw canonical rows in one call:
    ``PipelineModel.load(path).transform(loaded.df)``.
Tuning and training once
    :func:`tune` fits the feature stages once, caches the features and searches the
    ``LogisticRegression`` grid only; :func:`fit_or_load` reloads a saved model whose fingerprint
    (data, pipeline, settings, versions) matches and otherwise fits and saves it atomically;
    :func:`train_and_evaluate` splits, fits and reports test metrics.

Examples
--------
>>> import ctr_lab as cl
>>> from ctr_lab import train
>>> df = cl.load("data_samples/avazu_raw_50k.csv.gz").df                  # doctest: +SKIP
>>> train_df, test_df = train.time_split(df, test_days=1)                 # doctest: +SKIP
>>> model, info = train.fit_or_load("recommended", train_df, "build/models/rec")  # doctest: +SKIP
>>> scored_df = model.transform(test_df)                                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from pyspark import StorageLevel, keyword_only
from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import (
    FeatureHasher,
    OneHotEncoder,
    SQLTransformer,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ctr_lab.errors import CtrLabError
from ctr_lab.evaluate import log_loss_of
from ctr_lab.features import (
    FrequencyEncoder,
    HashedFeatureVocabulary,
    RareLevelBucketer,
    with_all_row_features,
)
from ctr_lab.fs import HadoopFs as _Fs

# What fit_or_load and tune did (trained, reloaded, copied): the local kernel shows these lines
# under a cell; elsewhere they are ordinary INFO records.
_log = logging.getLogger(__name__)

__all__ = [
    "LR_SETTINGS",
    "PIPELINES",
    "RECOMMENDED_PRIOR_ROWS",
    "STALE_SAVE_SECONDS",
    "ClassWeighter",
    "ProbabilityRecalibrator",
    "RowFeatures",
    "balanced_sample",
    "build_pipeline",
    "click_probability",
    "data_fingerprint",
    "fit_featurized",
    "fit_or_load",
    "hash_split",
    "lr_model_of",
    "random_split",
    "recalibrate",
    "stratified_sample",
    "time_split",
    "train_and_evaluate",
    "tune",
]

#: Settings every pipeline accepts for its LogisticRegression (plus ``class_weight``).
LR_SETTINGS = (
    "regParam",
    "elasticNetParam",
    "maxIter",
    "tol",
    "standardization",
    "threshold",
    "class_weight",
)

#: Name of the file that marks a saved model folder complete; it holds the fingerprint.
COMPLETE_MARKER = "_CTR_LAB_COMPLETE.json"

_SECONDS_PER_DAY = 86400
_HASH_BUCKETS = 1_000_000
#: Attribute of a LogisticRegression whose regParam is set at fit time to this / training rows.
_PRIOR_ROWS_ATTR = "_ctr_lab_prior_rows"
#: ``recommended``'s default L2 strength, in rows: regParam = RECOMMENDED_PRIOR_ROWS / rows.
RECOMMENDED_PRIOR_ROWS = 10.0
_WEIGHT_COL = "class_weight"


# ----------------------------------------------------------------------------------------------
# Splits and sampling
# ----------------------------------------------------------------------------------------------


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise CtrLabError(f"{name} is {value}. Fix: give a fraction strictly between 0 and 1")


def time_split(
    df: DataFrame, test_days: int = 1, time_col: str = "event_time"
) -> Tuple[DataFrame, DataFrame]:
    """Split by time: the last ``test_days`` calendar days (UTC) are the test set.

    A CTR model is trained on the past and used on the future, so this is the honest split for
    click logs (the course's random 80/20 split lets a model see the test days' users and ads).
    Days come from the instant's epoch seconds, so they are UTC whatever the session time zone.
    One small job finds the last day.

    Parameters
    ----------
    df
        Canonical data.
    test_days
        How many calendar days, counted back from the last day present, go to test.
    time_col
        The timestamp column.

    Returns
    -------
    (train_df, test_df)

    Examples
    --------
    >>> train_df, test_df = time_split(loaded.df, test_days=1)   # doctest: +SKIP
    """
    if test_days < 1:
        raise CtrLabError(f"time_split: test_days is {test_days}. Fix: use 1 or more")
    if time_col not in df.columns:
        raise CtrLabError(f"time_split: no column {time_col!r}. Fix: pass time_col=")
    day = F.floor(F.unix_timestamp(F.col(time_col)) / _SECONDS_PER_DAY)
    row = df.agg(F.max(day)).first()
    last_day = row[0] if row is not None else None
    if last_day is None:
        raise CtrLabError("time_split: the DataFrame has no rows with a time")
    is_test = day > F.lit(int(last_day) - test_days)
    return df.where(~is_test), df.where(is_test)


def random_split(
    df: DataFrame, test_fraction: float = 0.2, seed: int = 12345
) -> Tuple[DataFrame, DataFrame]:
    """Split rows at random (``randomSplit``): repeatable for the same data *and* partitioning.

    Which rows land in test depends on how the data are partitioned, so results differ across
    clusters; prefer :func:`hash_split` for a split that never moves, and :func:`time_split` for
    an honest estimate on click logs.

    Examples
    --------
    >>> train_df, test_df = random_split(loaded.df, 0.2, seed=12345)   # doctest: +SKIP
    """
    _check_fraction("random_split: test_fraction", test_fraction)
    train_df, test_df = df.randomSplit([1.0 - test_fraction, test_fraction], seed=seed)
    return train_df, test_df


def _hash_bucket(df: DataFrame, key_cols: Sequence[str], salt: str) -> Column:
    keyed = F.xxhash64(*[F.col(c) for c in key_cols], F.lit(salt))
    # xxhash64 skips nulls, so every null key would hash alike: such rows hash all columns.
    everything = F.xxhash64(*[F.col(c) for c in df.columns], F.lit(salt))
    any_null = F.lit(False)
    for c in key_cols:
        any_null = any_null | F.col(c).isNull()
    return F.pmod(F.when(any_null, everything).otherwise(keyed), F.lit(_HASH_BUCKETS))


def hash_split(
    df: DataFrame,
    test_fraction: float = 0.2,
    key_col: Union[str, Sequence[str]] = "id",
    salt: str = "ctr_lab",
) -> Tuple[DataFrame, DataFrame]:
    """Split by a hash of a key: the same rows on any number of partitions or machines.

    A row is in test when ``xxhash64(key, salt) mod 10^6 < test_fraction * 10^6``. Rows whose
    key is null (course data has no ``id``) are hashed on all their columns instead, so they are
    assigned deterministically too (identical duplicate rows go to the same side).

    Parameters
    ----------
    df
        Any DataFrame.
    test_fraction
        Expected share of rows in test.
    key_col
        A column or a list of columns identifying a row (or a user, to keep users apart).
    salt
        Change it to draw a different, equally repeatable split.

    Examples
    --------
    >>> train_df, test_df = hash_split(loaded.df, 0.2, key_col="id")   # doctest: +SKIP
    """
    _check_fraction("hash_split: test_fraction", test_fraction)
    keys = [key_col] if isinstance(key_col, str) else list(key_col)
    missing = [c for c in keys if c not in df.columns]
    if missing or not keys:
        raise CtrLabError(f"hash_split: key column(s) {missing or keys} not found. Fix: key_col=")
    bucket = _hash_bucket(df, keys, salt)
    is_test = bucket < F.lit(round(test_fraction * _HASH_BUCKETS))
    return df.where(~is_test), df.where(is_test)


def stratified_sample(
    df: DataFrame,
    fractions: Dict[int, float],
    seed: int = 2014,
    label_col: str = "label",
) -> DataFrame:
    """Sample each label at its own rate with ``sampleBy``: one pass, no shuffle.

    The course sorted all rows by ``rand()`` and took ``limit(n)`` per label: a full shuffle of
    the data for a sample. ``sampleBy`` keeps each row with its label's probability, so the
    counts are close to (not exactly) ``fraction x rows``.

    Parameters
    ----------
    fractions
        ``{0: f0, 1: f1}``; labels not listed are dropped.

    Examples
    --------
    >>> sample_df = stratified_sample(loaded.df, {0: 0.1, 1: 0.5}, seed=1)   # doctest: +SKIP
    """
    for key, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise CtrLabError(f"stratified_sample: fraction {value} for label {key} not in [0, 1]")
    return df.sampleBy(label_col, fractions={k: float(v) for k, v in fractions.items()}, seed=seed)


def balanced_sample(
    df: DataFrame,
    negatives_per_positive: float = 1.0,
    seed: int = 2014,
    label_col: str = "label",
) -> Tuple[DataFrame, float]:
    """Keep every click and about ``negatives_per_positive`` non-clicks per click.

    Returns the sample and the class weight it implies (``1 / negative fraction``): pass that to
    :func:`recalibrate` so the probabilities of a model trained on the sample are honest again.

    Examples
    --------
    >>> sample_df, w = balanced_sample(train_df, negatives_per_positive=2)   # doctest: +SKIP
    """
    counts = {int(r[0]): int(r[1]) for r in df.groupBy(label_col).count().collect()}
    positives, negatives = counts.get(1, 0), counts.get(0, 0)
    if positives == 0 or negatives == 0:
        raise CtrLabError(f"balanced_sample: need both labels, found counts {counts}")
    fraction = min(1.0, negatives_per_positive * positives / negatives)
    return stratified_sample(df, {0: fraction, 1: 1.0}, seed, label_col), 1.0 / fraction


# ----------------------------------------------------------------------------------------------
# Custom stages (Spark reloads them by importing this module)
# ----------------------------------------------------------------------------------------------


class RowFeatures(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """Pipeline stage applying :func:`ctr_lab.features.with_all_row_features`.

    It learns nothing; as the first stage it lets a saved model score raw canonical rows.

    Examples
    --------
    >>> RowFeatures().transform(loaded.df).columns[-3:]   # doctest: +SKIP
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


class ClassWeighter(Transformer, _WeightParams, DefaultParamsReadable, DefaultParamsWritable):
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
    >>> from pyspark.ml.linalg import Vectors
    >>> df = spark.createDataFrame(
    ...     [(Vectors.dense([0.0, 0.0]), Vectors.dense([0.5, 0.5]), 1.0)],
    ...     "rawPrediction vector, probability vector, prediction double",
    ... )   # doctest: +SKIP
    >>> round(recalibrate(df, 3.0).first().probability[1], 4)   # doctest: +SKIP
    0.25
    """
    if not w > 0:
        raise CtrLabError(f"recalibrate: weight {w} must be > 0")
    return _recalibrated(pred_df, float(w), threshold)


class ProbabilityRecalibrator(
    Transformer, _WeightParams, DefaultParamsReadable, DefaultParamsWritable
):
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


# ----------------------------------------------------------------------------------------------
# Pipelines by name
# ----------------------------------------------------------------------------------------------

#: CTR_03's categorical columns.
COURSE_CATEGORICALS = [
    "banner_pos",
    "site_category",
    "site_domain",
    "device_type",
    "app_domain",
    "app_category",
    "device_model",
]
#: Low-cardinality columns indexed as they are in ``course_improved``.
_IMPROVED_LOW = [
    "C1",
    "banner_pos",
    "device_type",
    "device_conn_type",
    "site_category",
    "app_category",
    "pub_category",
    "C15",
    "C16",
    "C18",
    "hour_of_day",
    "day_of_week",
]
#: High-cardinality columns bucketed (rare levels merged) before indexing or hashing.
_HIGH_CARDINALITY = [
    "site_id",
    "site_domain",
    "app_id",
    "app_domain",
    "device_model",
    "pub_id",
    "pub_domain",
    "C14",
    "C17",
    "C19",
    "C20_level",
    "C21",
]
#: Integer-coded columns hashed as categories (FeatureHasher categoricalCols).
_HASHED_INT = ["C1", "banner_pos", "device_type", "device_conn_type", "C15", "C16", "C18"]
_HASHED_STR = ["site_category", "app_category", "pub_category"]
#: Crosses for ``recommended``: output name -> the columns joined.
_CROSSES = {
    "x_hour_pubcat": ("hour_of_day", "pub_category"),
    "x_banner_devtype": ("banner_pos", "device_type"),
    "x_hour_dow": ("hour_of_day", "day_of_week"),
    "x_pubid_c18": ("pub_id_bucketed", "C18"),
    "x_pubcat_devtype": ("pub_category", "device_type"),
}
_COUNT_KEYS = ["user", "device_ip"]
#: Impressions of the same user in the same hour / day *within the scored batch* (a window).
_BATCH_COUNTS_SQL = (
    "SELECT *, log1p(count(1) OVER (PARTITION BY user, hour_bucket)) AS batch_user_hour, "
    "log1p(count(1) OVER (PARTITION BY user, floor(unix_timestamp(event_time) / 86400))) "
    "AS batch_user_day FROM __THIS__"
)


def _lr(settings: Dict[str, Any], defaults: Dict[str, Any]) -> LogisticRegression:
    params = dict(defaults)
    params.update({k: v for k, v in settings.items() if k in LR_SETTINGS and k != "class_weight"})
    lr = LogisticRegression(featuresCol="features", labelCol="label")
    lr.setParams(**params)
    if float(settings.get("class_weight") or 1.0) != 1.0:
        lr.setWeightCol(_WEIGHT_COL)
    return lr


def _one_hot(cols: List[str]) -> Tuple[List[Any], List[str]]:
    indexed = [f"{c}_idx" for c in cols]
    encoded = [f"{c}_ohe" for c in cols]
    return [
        StringIndexer(inputCols=cols, outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
    ], encoded


def _course_baseline(settings: Dict[str, Any]) -> Tuple[List[Any], LogisticRegression]:
    # Month, day and hour in UTC: a DATE from epoch days has no time zone to convert through.
    utc_date = "date_from_unix_date(CAST(floor(unix_timestamp(event_time) / 86400) AS INT))"
    time_sql = SQLTransformer(
        statement=(
            f"SELECT *, CAST(month({utc_date}) AS DOUBLE) AS month, "
            f"CAST(dayofmonth({utc_date}) AS DOUBLE) AS day, "
            "CAST(hour_of_day AS DOUBLE) AS hour FROM __THIS__"
        )
    )
    encoders, encoded = _one_hot(COURSE_CATEGORICALS)
    assembler = VectorAssembler(
        inputCols=["month", "day", "hour", *encoded], outputCol="features", handleInvalid="keep"
    )
    return [RowFeatures(), time_sql, *encoders, assembler], _lr(settings, {})


def _course_improved(settings: Dict[str, Any]) -> Tuple[List[Any], LogisticRegression]:
    min_count = int(settings.get("minCount", 10))
    bucketed = [f"{c}_bucketed" for c in _HIGH_CARDINALITY]
    counts = FrequencyEncoder(keys=_COUNT_KEYS, logScale=True)
    encoders, encoded = _one_hot(_IMPROVED_LOW + bucketed)
    assembler = VectorAssembler(
        inputCols=[*encoded, *counts.getOutputCols()], outputCol="features", handleInvalid="keep"
    )
    stages = [
        RowFeatures(),
        RareLevelBucketer(inputCols=_HIGH_CARDINALITY, minCount=min_count),
        counts,
        *encoders,
        assembler,
    ]
    return stages, _lr(settings, {"regParam": 1e-3, "maxIter": 100, "standardization": False})


def _recommended(settings: Dict[str, Any]) -> Tuple[List[Any], LogisticRegression]:
    min_count = int(settings.get("minCount", 3))
    num_features = int(settings.get("numFeatures", 1 << 18))
    bucketed = [f"{c}_bucketed" for c in _HIGH_CARDINALITY]
    counts = FrequencyEncoder(keys=_COUNT_KEYS, logScale=True)
    crosses = ", ".join(
        "concat_ws('_', " + ", ".join(f"CAST({c} AS STRING)" for c in cols) + f") AS {name}"
        for name, cols in _CROSSES.items()
    )
    hasher = FeatureHasher(
        inputCols=[
            *_HASHED_INT,
            *_HASHED_STR,
            "hour_of_day",
            "day_of_week",
            *bucketed,
            *_CROSSES,
            *counts.getOutputCols(),
            "batch_user_hour",
            "batch_user_day",
        ],
        categoricalCols=[*_HASHED_INT, "hour_of_day", "day_of_week"],
        numFeatures=num_features,
        outputCol="features",
    )
    stages = [
        RowFeatures(),
        RareLevelBucketer(inputCols=_HIGH_CARDINALITY, minCount=min_count),
        counts,
        SQLTransformer(statement=f"SELECT *, {crosses} FROM __THIS__"),
        SQLTransformer(statement=_BATCH_COUNTS_SQL),
        # Names the hashed features: (column, value) -> index, kept in the saved model.
        HashedFeatureVocabulary.of(hasher),
        hasher,
    ]
    defaults = {
        "regParam": RECOMMENDED_PRIOR_ROWS / 200_000,
        "maxIter": 60,
        "tol": 1e-6,
        "standardization": False,
    }
    lr = _lr(settings, defaults)
    if "regParam" not in settings:
        # Spark's L2 term is regParam/2 |w|^2 against the *mean* log loss, so a fixed regParam
        # is a prior that tightens as the data grow. A fixed prior (an sd of about
        # 1/sqrt(RECOMMENDED_PRIOR_ROWS) on each weight) means regParam = that / rows: set by
        # fit_featurized (and so fit_or_load, train_and_evaluate, tune) from the row count.
        setattr(lr, _PRIOR_ROWS_ATTR, RECOMMENDED_PRIOR_ROWS)
    return stages, lr


#: Pipeline builders by name: each returns (feature stages, LogisticRegression).
PIPELINES: Dict[str, Callable[[Dict[str, Any]], Tuple[List[Any], LogisticRegression]]] = {
    "course_baseline": _course_baseline,
    "course_improved": _course_improved,
    "recommended": _recommended,
}


def _check_settings(name: str, settings: Dict[str, Any]) -> None:
    if name not in PIPELINES:
        raise CtrLabError(f"no pipeline named {name!r}. Fix: use one of {', '.join(PIPELINES)}")
    allowed = {*LR_SETTINGS, "minCount", "numFeatures"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise CtrLabError(
            f"build_pipeline: unknown setting(s) {unknown}. Fix: use {sorted(allowed)}"
        )
    w = settings.get("class_weight")
    if w is not None and not float(w) > 0:
        raise CtrLabError(f"build_pipeline: class_weight {w} must be > 0")


def build_pipeline(name: str, **settings: Any) -> Pipeline:
    """Build a named CTR pipeline that takes canonical rows and adds ``probability``.

    Stages: :class:`RowFeatures` (row transforms), the pipeline's fitted encoders, then
    ``LogisticRegression``; with ``class_weight`` a :class:`ClassWeighter` before it and a
    :class:`ProbabilityRecalibrator` after it, so the output probabilities stay honest.

    ``course_baseline``
        CTR_03: StringIndexer + OneHotEncoder of banner_pos, site_category, site_domain,
        device_type, app_domain, app_category, device_model; numeric month, day, hour (UTC);
        default LogisticRegression (``maxIter=100``, no regularisation, standardization on).
    ``course_improved``
        CTR_04/05 done right: C1, C15, C16, C18 and other small codes indexed (never one-hot of
        raw codes); C14, C17, C19, C20 (``-1`` its own level), C21, ids, domains, device_model
        and the publisher columns with rare levels (< ``minCount``, default 10, on train)
        bucketed, then indexed + one-hot; log user and device_ip counts learned on train only;
        ``regParam=1e-3``, ``standardization=False``.
    ``recommended``
        FeatureHasher (``numFeatures``, default 2^18; integer codes as ``categoricalCols``) over
        the same columns with ``minCount=3``, hour of day, day of week, log counts and crosses
        hour x pub_category, banner_pos x device_type, hour x day_of_week, pub_id x C18,
        pub_category x device_type, plus each user's impressions in the same hour and day of
        the scored batch; a :class:`~ctr_lab.features.HashedFeatureVocabulary` before the
        hasher records which level went to which index, so
        :func:`ctr_lab.evaluate.top_coefficients` can name the weights of a (reloaded) model.
        ``maxIter=60``, ``tol=1e-6``, ``standardization=False`` and, unless ``regParam`` is
        given, ``regParam = RECOMMENDED_PRIOR_ROWS / training rows`` (set when it is fitted
        through this module, so the prior on each weight does not tighten as the data grow).

    Counts of ``user,hour_bucket`` are left out on purpose: on a time split every test hour is
    new, so that count would be 0 on every test row and non-zero on every training row.
    ``recommended`` counts a user's impressions in the same hour and day of the batch it scores
    instead (no labels are read, so nothing about test clicks leaks): the strongest user
    signal (how many ads a person sees in one visit) is only visible that way. The price: a
    row's score depends on the rows scored with it, so score whole hours or days of traffic
    together, as a daily batch does; a row scored alone counts as its user's only impression.

    Parameters
    ----------
    name
        A key of :data:`PIPELINES`.
    **settings
        LogisticRegression settings (``regParam``, ``elasticNetParam``, ``maxIter``, ``tol``,
        ``standardization``, ``threshold``), ``class_weight`` (weight of clicks), and
        ``minCount`` / ``numFeatures`` where the pipeline uses them.

    Examples
    --------
    >>> pipeline = build_pipeline("recommended", regParam=1e-4, numFeatures=1 << 18)
    >>> type(pipeline.getStages()[-1]).__name__
    'LogisticRegression'
    """
    _check_settings(name, settings)
    features, lr = PIPELINES[name](settings)
    w = float(settings.get("class_weight") or 1.0)
    if w == 1.0:
        return Pipeline(stages=[*features, lr])
    threshold = float(settings.get("threshold", 0.5))
    # LR's own threshold applies to the weighted probability: the recalibrator re-decides.
    return Pipeline(
        stages=[
            *features,
            ClassWeighter(positiveWeight=w),
            lr,
            ProbabilityRecalibrator(positiveWeight=w, threshold=threshold),
        ]
    )


def _split_stages(stages: Sequence[Any]) -> Tuple[List[Any], Any, List[Any]]:
    """(stages before the LR, the LR, stages after it)."""
    kinds = (LogisticRegression, LogisticRegressionModel)
    at = [i for i, s in enumerate(stages) if isinstance(s, kinds)]
    if len(at) != 1:
        raise CtrLabError("the pipeline must hold exactly one LogisticRegression stage")
    i = at[0]
    return list(stages[:i]), stages[i], list(stages[i + 1 :])


def lr_model_of(model: PipelineModel) -> LogisticRegressionModel:
    """The fitted LogisticRegressionModel inside a pipeline model."""
    return _split_stages(model.stages)[1]


def click_probability(pred_df: DataFrame, output_col: str = "p_hat") -> DataFrame:
    """Add the click probability (``probability[1]``) as a plain double column."""
    return pred_df.withColumn(output_col, vector_to_array(F.col("probability"))[1])


def _stage_inputs(stage: Any) -> Optional[List[str]]:
    """The columns a stage reads, when its params say so (None for e.g. a SQLTransformer)."""
    names: List[str] = []
    for param in ("inputCol", "inputCols", "labelCol"):
        if stage.hasParam(param) and stage.isDefined(stage.getParam(param)):
            value = stage.getOrDefault(stage.getParam(param))
            names.extend([value] if isinstance(value, str) else list(value))
    return names or None


def _one_partition_per_core(df: DataFrame) -> DataFrame:
    """``df`` merged (no shuffle) down to one partition per core when it has more.

    Each L-BFGS iteration sends one dense gradient (the full feature length) per partition
    through ``treeAggregate``; the joins and windows of the feature stages leave
    ``spark.sql.shuffle.partitions`` partitions, often several per core. Measured on 45k rows,
    2^18 features, 2 cores: 60 iterations took 20 s on 8 partitions and 7-8 s on 1 or 2.
    """
    cores = df.sparkSession.sparkContext.defaultParallelism
    return df.coalesce(cores) if df.rdd.getNumPartitions() > cores else df


def _fit_features(
    before: Sequence[Any], train_df: DataFrame, cols: List[str]
) -> Tuple[PipelineModel, DataFrame, int]:
    """Fit the feature stages; return them, their output ``cols`` on ``train_df`` (cached), rows.

    The stages before the last estimator are fitted with ``Pipeline.fit`` and their output is
    computed once and cached (only the columns the remaining stages read, when their params say
    which), so the last estimator (``HashedFeatureVocabulary``, ``OneHotEncoder``) and the
    final output do not recompute the joins and windows before it.
    """
    from pyspark.ml import Estimator

    last = max([i for i, s in enumerate(before) if isinstance(s, Estimator)], default=-1)
    head = Pipeline(stages=list(before[: max(last, 0)])).fit(train_df)
    tail = list(before[max(last, 0) :])
    pre_df = head.transform(train_df)
    inputs = [_stage_inputs(s) for s in tail]
    if all(names is not None for names in inputs):
        wanted = {c for names in inputs for c in names or []} | set(cols)
        pre_df = pre_df.select(*[c for c in pre_df.columns if c in wanted])
    pre_df = pre_df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        fitted = []
        df = pre_df
        for stage in tail:
            model = stage.fit(df) if isinstance(stage, Estimator) else stage
            df = model.transform(df)
            fitted.append(model)
        features_df = _one_partition_per_core(df.select(*cols))
        features_df = features_df.persist(StorageLevel.MEMORY_AND_DISK)
        rows = features_df.count()
    finally:
        pre_df.unpersist()
    return PipelineModel(stages=[*head.stages, *fitted]), features_df, rows


def _scaled_lr(lr: Any, rows: int) -> Any:
    """``lr`` with regParam = (its rows-of-prior) / ``rows`` when it has one, else ``lr``."""
    prior_rows = getattr(lr, _PRIOR_ROWS_ATTR, None)
    if prior_rows is None or rows <= 0:
        return lr
    return lr.copy({lr.regParam: float(prior_rows) / rows})


def fit_featurized(pipeline: Pipeline, train_df: DataFrame) -> PipelineModel:
    """Fit ``pipeline`` with its features computed once and cached for the LR iterations.

    ``Pipeline.fit`` would compute the joins and windows of the feature stages once per
    estimator that follows them, then hand the LR an uncached plan that every L-BFGS pass
    recomputes; here the features are computed once, cached (only the columns the LR reads),
    the LR fitted, and the cache released.

    Examples
    --------
    >>> model = fit_featurized(build_pipeline("recommended"), train_df)   # doctest: +SKIP
    """
    before, lr, after = _split_stages(pipeline.getStages())
    cols = ["features", "label"] + ([lr.getWeightCol()] if lr.isSet(lr.weightCol) else [])
    feature_model, features_df, rows = _fit_features(before, train_df, cols)
    try:
        lr_model = _scaled_lr(lr, rows).fit(features_df)
    finally:
        features_df.unpersist()
    return PipelineModel(stages=[*feature_model.stages, lr_model, *after])


# ----------------------------------------------------------------------------------------------
# Tuning on featurized data
# ----------------------------------------------------------------------------------------------


def tune(
    train_df: DataFrame,
    pipeline_name: str,
    grid: Dict[str, List[Any]],
    method: str = "tvs",
    parallelism: int = 2,
    metric: str = "logLoss",
    train_ratio: float = 0.8,
    num_folds: int = 3,
    seed: int = 2014,
    model_dir: Optional[str] = None,
    **settings: Any,
):
    """Search a LogisticRegression grid on features computed once.

    The feature stages are fitted once on ``train_df``; its features are cached; then
    ``TrainValidationSplit`` (``method="tvs"``) or ``CrossValidator`` (``"cv"``) fits the LR
    alone for each grid point, ``parallelism`` at a time. Encoders are never refit per fold
    (the course's CrossValidator over the whole pipeline refit every one of them). The
    encoders see the validation rows while fitting, which can favour weaker regularisation a
    little; hold a time-split test set out of ``train_df`` for the final number.

    Parameters
    ----------
    grid
        LR param name -> values, e.g. ``{"regParam": [1e-5, 1e-4], "maxIter": [30]}``.
    metric
        ``"logLoss"`` (smaller is better) or ``"areaUnderROC"``.
    model_dir
        Also save the best model there, as :func:`fit_or_load` would save the same pipeline
        with the winning values as settings: a later ``fit_or_load`` with those settings, in
        that folder or one beside it, loads it instead of fitting it again. The table is kept
        with it: the same search again (same rows, pipeline, settings, grid and search
        arguments) loads the model and the table instead of searching.

    Returns
    -------
    (PipelineModel, pandas.DataFrame)
        The feature model + best LR (+ recalibrator) as one model, and one row per grid point
        with its validation metric.

    Examples
    --------
    >>> model, table = tune(train_df, "recommended", {"regParam": [1e-5, 1e-4]})  # doctest: +SKIP
    """
    import pandas as pd
    from pyspark.ml.evaluation import (
        BinaryClassificationEvaluator,
        MulticlassClassificationEvaluator,
    )
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

    pipeline = build_pipeline(pipeline_name, **settings)
    spark = train_df.sparkSession
    search_args = {
        "grid": {k: list(v) for k, v in grid.items()},
        "method": method,
        "metric": metric,
        "train_ratio": train_ratio,
        "num_folds": num_folds,
        "seed": seed,
    }
    data: Optional[Dict[str, Any]] = None
    if model_dir is not None:
        fs = _Fs(spark, model_dir)
        data = data_fingerprint(train_df)
        search_fp = _fingerprint(spark, pipeline, train_df, settings, data, search_args)
        saved = _saved_marker(fs, model_dir.rstrip("/"))
        if saved.get("search_fingerprint") == search_fp and "search_table" in saved:
            _log.info("tune: reloaded the winner and its table from %s (same search)", model_dir)
            return PipelineModel.load(model_dir), pd.DataFrame(saved["search_table"])
    t0 = time.perf_counter()
    before, lr, after = _split_stages(pipeline.getStages())
    builder = ParamGridBuilder()
    for name, values in grid.items():
        if not lr.hasParam(name):
            raise CtrLabError(f"tune: {name!r} is not a LogisticRegression param")
        builder = builder.addGrid(lr.getParam(name), list(values))
    param_maps = builder.build()

    if metric == "logLoss":
        # Spark >= 3.0 has logLoss; the type stubs do not list it.
        log_loss_kwargs: Dict[str, Any] = {"metricName": "logLoss"}
        evaluator: Any = MulticlassClassificationEvaluator(**log_loss_kwargs)
    elif metric == "areaUnderROC":
        evaluator = BinaryClassificationEvaluator(metricName="areaUnderROC", numBins=0)
    else:
        raise CtrLabError(f"tune: metric {metric!r}. Fix: 'logLoss' or 'areaUnderROC'")

    cols = ["features", "label"] + ([lr.getWeightCol()] if lr.isSet(lr.weightCol) else [])
    feature_model, features_df, n_rows = _fit_features(before, train_df, cols)
    if "regParam" not in grid:
        fit_rows = n_rows * (train_ratio if method == "tvs" else (num_folds - 1) / num_folds)
        lr = _scaled_lr(lr, int(fit_rows))
    try:
        if method == "tvs":
            search: Any = TrainValidationSplit(
                estimator=lr,
                estimatorParamMaps=param_maps,
                evaluator=evaluator,
                trainRatio=train_ratio,
                parallelism=parallelism,
                seed=seed,
            )
        elif method == "cv":
            search = CrossValidator(
                estimator=lr,
                estimatorParamMaps=param_maps,
                evaluator=evaluator,
                numFolds=num_folds,
                parallelism=parallelism,
                seed=seed,
            )
        else:
            raise CtrLabError(f"tune: method {method!r}. Fix: 'tvs' or 'cv'")
        fitted = search.fit(features_df)
    finally:
        features_df.unpersist()
    metrics = fitted.validationMetrics if method == "tvs" else fitted.avgMetrics
    rows = []
    for params, value in zip(param_maps, metrics):
        row = {p.name: v for p, v in params.items()}
        row[metric] = float(value)
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(metric, ascending=(metric == "logLoss"))
    model = PipelineModel(stages=[*feature_model.stages, fitted.bestModel, *after])
    if model_dir is not None:
        best = {p.name: v for p, v in param_maps[int(table.index[0])].items()}
        won = {**settings, **best}
        won_pipeline = build_pipeline(pipeline_name, **won)
        fingerprint = _fingerprint(spark, won_pipeline, train_df, won, data)
        records = [
            {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
            for row in table.to_dict("records")
        ]
        kept = {"search_fingerprint": search_fp, "search_table": records}
        _save_model(fs, model_dir.rstrip("/"), fingerprint, model=model, extra=kept)
    saved_to = f", saved the winner to {model_dir}" if model_dir is not None else ""
    _log.info(
        "tune: tried %d settings in %.1f s%s", len(param_maps), time.perf_counter() - t0, saved_to
    )
    return model, table.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Train once: fingerprints and atomic saves
# ----------------------------------------------------------------------------------------------


def data_fingerprint(df: DataFrame) -> Dict[str, Any]:
    """Row count and an order-free checksum (sum of xxhash64 of every row) of ``df``.

    One pass over the data; the same rows give the same checksum on any partitioning.

    Examples
    --------
    >>> data_fingerprint(spark.range(3))["rows"]
    3
    """
    row_hash = F.xxhash64(*[F.col(c) for c in df.columns]).cast("decimal(38,0)")
    row = df.agg(F.count(F.lit(1)), F.sum(row_hash)).first()
    rows, total = (row[0], row[1]) if row is not None else (0, None)
    return {"rows": int(rows), "checksum": str(total), "columns": list(df.columns)}


def _stage_spec(stage: Any) -> Dict[str, Any]:
    # Default output names embed the random uid: leave it out so equal pipelines match.
    params = {
        p.name: repr(v).replace(stage.uid, "<uid>") for p, v in stage.extractParamMap().items()
    }
    return {"class": f"{type(stage).__module__}.{type(stage).__name__}", "params": params}


def _pipeline_spec(pipeline: Pipeline) -> List[Dict[str, Any]]:
    specs = []
    for stage in pipeline.getStages():
        spec = _stage_spec(stage)
        if isinstance(stage, Pipeline):
            spec["stages"] = _pipeline_spec(stage)
        specs.append(spec)
    return specs


def _fingerprint(
    spark,
    pipeline: Pipeline,
    df: DataFrame,
    settings: Dict[str, Any],
    data: Optional[Dict[str, Any]] = None,
    search: Optional[Dict[str, Any]] = None,
) -> str:
    """The fingerprint of fitting ``pipeline`` on ``df`` (of a ``search`` for its best LR).

    ``data``: ``df``'s :func:`data_fingerprint` when it is known already.
    """
    import ctr_lab

    doc = {
        "data": data if data is not None else data_fingerprint(df),
        "pipeline": _pipeline_spec(pipeline),
        "settings": {k: repr(v) for k, v in sorted(settings.items())},
        "ctr_lab": getattr(ctr_lab, "__version__", "unknown"),
        "spark": spark.version,
    }
    if search is not None:
        doc["search"] = {k: repr(v) for k, v in sorted(search.items())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()


def _marker(model_dir: str) -> str:
    return model_dir.rstrip("/") + "/" + COMPLETE_MARKER


#: A ``.tmp-*`` folder without a marker older than this is a save that died: it is deleted.
STALE_SAVE_SECONDS = 3600.0


def _saved_marker(fs: _Fs, model_dir: str) -> Dict[str, Any]:
    """The completion marker of the model in ``model_dir``; empty when there is none."""
    saved = fs.read_text(_marker(model_dir))
    if saved is None:
        return {}
    try:
        marker = json.loads(saved)
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}


def _saved_fingerprint(fs: _Fs, model_dir: str) -> Optional[str]:
    return _saved_marker(fs, model_dir).get("fingerprint")


def _restore_left_over(fs: _Fs, model_dir: str, fingerprint: str) -> bool:
    """Move a complete model with ``fingerprint`` that a killed save left aside back into place.

    A save killed after its marker was written leaves the new model in ``<dir>.tmp-*``; one
    killed between the two renames leaves the previous model in ``<dir>.old-*``.
    """
    for pattern in (".old-*", ".tmp-*"):
        for path, _age in fs.glob(model_dir + pattern):
            if _saved_fingerprint(fs, path) != fingerprint:
                continue
            if fs.exists(model_dir):
                fs.rename(model_dir, f"{model_dir}.old-{uuid.uuid4().hex[:12]}")
            return fs.rename(path, model_dir)
    return False


def _sweep_left_overs(fs: _Fs, model_dir: str) -> None:
    """Delete what killed saves left beside ``model_dir``: ``.old-*`` folders, and ``.tmp-*``
    folders with no marker and untouched for :data:`STALE_SAVE_SECONDS` (a younger one may be
    another process's save in progress)."""
    for path, _age in fs.glob(model_dir + ".old-*"):
        fs.delete(path)
    for path, age in fs.glob(model_dir + ".tmp-*"):
        if age > STALE_SAVE_SECONDS and not fs.exists(_marker(path)):
            fs.delete(path)


def fit_or_load(
    pipeline_or_name: Union[str, Pipeline],
    train_df: DataFrame,
    model_dir: str,
    **settings: Any,
) -> Tuple[PipelineModel, Dict[str, Any]]:
    """Fit a pipeline once: reload the saved model when nothing changed, else fit and save it.

    The fingerprint covers the data (row count + sum of row hashes: one pass), the pipeline's
    stages and params, ``settings``, the ctr_lab version and the Spark version. A saved model is
    loaded only when its folder holds the completion marker (:data:`COMPLETE_MARKER`) with the
    same fingerprint. Saving is atomic: the model is written to a temporary sibling folder, the
    marker is written last, and the folder is renamed into place (atomic on local disks and
    HDFS; on S3 a rename is a copy, but a half-copied folder has no marker, so it is never
    loaded). A folder without the marker (a crash mid-save) is deleted and refitted. A
    complete model that a killed save left beside the folder (``<model_dir>.old-*`` or
    ``.tmp-*``, with the marker) is moved back and loaded when its fingerprint matches; what
    killed saves left otherwise is deleted (``.tmp-*`` once :data:`STALE_SAVE_SECONDS` old).

    A model is trained once per data and settings, whatever folder asks for it: when another
    folder beside ``model_dir`` (same parent) holds a complete model with the same fingerprint,
    for example the baseline of notebook 03 or the winner :func:`tune` saved, it is copied
    into ``model_dir`` (the same atomic save) and loaded instead of fitted.

    Parameters
    ----------
    pipeline_or_name
        A :data:`PIPELINES` name (built with ``settings``) or a ``Pipeline``.
    train_df
        The training rows.
    model_dir
        Where the model lives: a local path or an ``s3://`` URI.

    Returns
    -------
    (PipelineModel, info)
        ``info`` has ``loaded`` (bool), ``fingerprint``, ``seconds`` and ``model_dir``, and
        ``copied_from`` when the model came from a folder beside it.

    Examples
    --------
    >>> model, info = fit_or_load("recommended", train_df, "build/models/rec")   # doctest: +SKIP
    >>> info["loaded"]                                                          # doctest: +SKIP
    True
    """
    t0 = time.perf_counter()
    spark = train_df.sparkSession
    if isinstance(pipeline_or_name, str):
        pipeline = build_pipeline(pipeline_or_name, **settings)
    else:
        pipeline = pipeline_or_name
    fingerprint = _fingerprint(spark, pipeline, train_df, settings)
    fs = _Fs(spark, model_dir)
    info: Dict[str, Any] = {"fingerprint": fingerprint, "model_dir": model_dir}

    base = model_dir.rstrip("/")
    if _saved_fingerprint(fs, base) == fingerprint or _restore_left_over(fs, base, fingerprint):
        model = PipelineModel.load(model_dir)
        _sweep_left_overs(fs, base)
        info.update(loaded=True, seconds=time.perf_counter() - t0)
        _log.info(
            "fit_or_load: reloaded the saved model from %s in %.1f s", model_dir, info["seconds"]
        )
        return model, info
    twin = _same_model_beside(fs, base, fingerprint)
    if twin is not None:
        _save_model(fs, base, fingerprint, copy_of=twin)
        model = PipelineModel.load(model_dir)
        info.update(loaded=True, copied_from=twin, seconds=time.perf_counter() - t0)
        _log.info("fit_or_load: copied the same model from %s to %s", twin, model_dir)
        return model, info

    model = fit_featurized(pipeline, train_df)
    _save_model(fs, base, fingerprint, model=model)
    info.update(loaded=False, seconds=time.perf_counter() - t0)
    _log.info("fit_or_load: trained in %.1f s, saved to %s", info["seconds"], model_dir)
    return model, info


def _same_model_beside(fs: _Fs, base: str, fingerprint: str) -> Optional[str]:
    """A complete model with ``fingerprint`` in another folder beside ``base``, if any."""
    parent = base.rsplit("/", 1)[0] if "/" in base else "."
    for marker, _age in fs.glob(f"{parent}/*/{COMPLETE_MARKER}"):
        folder = marker[: -len(COMPLETE_MARKER) - 1]
        name = folder.rsplit("/", 1)[-1]
        if ".tmp-" in name or ".old-" in name or name == base.rsplit("/", 1)[-1]:
            continue
        if _saved_fingerprint(fs, folder) == fingerprint:
            return folder
    return None


def _save_model(
    fs: _Fs,
    base: str,
    fingerprint: str,
    model: Optional[PipelineModel] = None,
    copy_of: Optional[str] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> None:
    """Save ``model`` (or copy the saved model at ``copy_of``) to ``base`` atomically.

    Written to a temporary sibling, the marker (with ``extra`` in it) last, then renamed into
    place; the previous folder is moved aside first and dropped after.
    """
    tmp_dir = f"{base}.tmp-{uuid.uuid4().hex[:12]}"
    old_dir = f"{base}.old-{uuid.uuid4().hex[:12]}"
    try:
        if model is not None:
            model.write().overwrite().save(tmp_dir)
        else:
            assert copy_of is not None
            fs.copy_tree(copy_of, tmp_dir, skip=COMPLETE_MARKER)
        marker = {
            "fingerprint": fingerprint,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if copy_of is not None:
            marker["copied_from"] = copy_of
        marker.update(extra or {})
        fs.write_text(_marker(tmp_dir), json.dumps(marker))
        if fs.exists(base):  # stale or half-written: move it aside, then drop it
            fs.rename(base, old_dir)
        if not fs.rename(tmp_dir, base):
            raise CtrLabError(f"fit_or_load: could not rename {tmp_dir} to {base}")
        fs.delete(old_dir)
    except Exception:
        fs.delete(tmp_dir)
        raise
    _sweep_left_overs(fs, base)


# ----------------------------------------------------------------------------------------------
# One call: split, fit, evaluate
# ----------------------------------------------------------------------------------------------


def _auc(pred_df: DataFrame) -> float:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    evaluator = BinaryClassificationEvaluator(
        rawPredictionCol="probability", labelCol="label", metricName="areaUnderROC", numBins=0
    )
    return float(evaluator.evaluate(pred_df))


def train_and_evaluate(
    df: DataFrame,
    pipeline_name: str,
    split: str = "time",
    test_days: int = 1,
    test_fraction: float = 0.2,
    seed: int = 12345,
    model_dir: Optional[str] = None,
    **settings: Any,
) -> Dict[str, Any]:
    """Split, fit (or reload with ``model_dir``), score the test rows and report metrics.

    Parameters
    ----------
    split
        ``"time"`` (last ``test_days`` days), ``"hash"`` (by ``id``) or ``"random"``.

    Returns
    -------
    dict
        ``pipeline``, ``split``, ``train_rows``, ``test_rows``, ``log_loss``, ``auc``,
        ``fit_seconds``, ``iterations`` (None for a reloaded model), ``reg_param`` (the L2
        strength the LR used), ``loaded`` and ``model``.

    Examples
    --------
    >>> result = train_and_evaluate(loaded.df, "recommended", split="time")   # doctest: +SKIP
    >>> round(result["log_loss"], 4)                                           # doctest: +SKIP
    """
    if split == "time":
        train_df, test_df = time_split(df, test_days=test_days)
    elif split == "hash":
        train_df, test_df = hash_split(df, test_fraction, key_col="id", salt=str(seed))
    elif split == "random":
        train_df, test_df = random_split(df, test_fraction, seed=seed)
    else:
        raise CtrLabError(f"train_and_evaluate: split {split!r}. Fix: 'time', 'hash' or 'random'")
    t0 = time.perf_counter()
    if model_dir is not None:
        model, info = fit_or_load(pipeline_name, train_df, model_dir, **settings)
        loaded = bool(info["loaded"])
    else:
        model = fit_featurized(build_pipeline(pipeline_name, **settings), train_df)
        loaded = False
    fit_seconds = time.perf_counter() - t0
    lr_model = lr_model_of(model)
    iterations = lr_model.summary.totalIterations if lr_model.hasSummary else None
    scored = click_probability(model.transform(test_df)).select("label", "probability", "p_hat")
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        test_rows = scored.count()
        result = {
            "pipeline": pipeline_name,
            "split": split,
            "train_rows": train_df.count(),
            "test_rows": test_rows,
            "log_loss": log_loss_of(scored, "label", "p_hat"),
            "auc": _auc(scored),
            "fit_seconds": fit_seconds,
            "iterations": iterations,
            "reg_param": lr_model.getRegParam(),
            "loaded": loaded,
            "model": model,
        }
    finally:
        scored.unpersist()
    return result
