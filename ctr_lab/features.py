"""Feature engineering for Avazu click data: row-level transforms and fitted Spark ML stages.

Two kinds of feature live here.

Row-level transforms
    Pure ``DataFrame -> DataFrame`` functions that look at one row at a time (no I/O, no
    ``collect``), chained with ``df.transform(...)``: :func:`with_time_features`,
    :func:`with_publisher`, :func:`with_user`, :func:`with_c20_level` and
    :func:`with_all_row_features`. They learn nothing, so they are safe to run before the
    train/test split.
Fitted stages
    Spark ML estimators whose state comes from the training split only and is saved with a
    ``PipelineModel``: :class:`RareLevelBucketer` (levels seen fewer than ``minCount`` times
    become one ``__rare__`` level) and :class:`FrequencyEncoder` (how often a key such as
    ``user`` was seen in the training data). They must live in this module: Spark reloads a
    saved stage by importing the module its class came from.

What the course got wrong, and this module fixes:

* the publisher columns were built after ``pub_id`` had been overwritten, so app traffic never
  got the app domain and category (:func:`with_publisher` decides from the original ``site_id``);
* C20's ``-1`` ("missing") was mapped onto 0 (:func:`with_c20_level` keeps it as its own level);
* count features were computed over all rows before the split, so a test row's count included
  the test rows (:class:`FrequencyEncoder` counts the training rows only).

Examples
--------
>>> from pyspark.ml import Pipeline, PipelineModel
>>> import ctr_lab as cl
>>> import ctr_lab.features as fe
>>> train_df, test_df = cl.train.time_split(cl.load("course_10k", spark).df.cache())
>>> pipeline = Pipeline(stages=[
...     fe.RareLevelBucketer(inputCols=["pub_id", "C14", "C20_level"], minCount=10),
...     fe.FrequencyEncoder(keys=["user", "device_ip"], logScale=True),
... ])
>>> model = pipeline.fit(train_df.transform(fe.with_all_row_features))
>>> model.write().overwrite().save(str(tmp_path / "features_model"))
>>> test_features_df = PipelineModel.load(str(tmp_path / "features_model")).transform(
...     test_df.transform(fe.with_all_row_features)
... )
>>> test_features_df.columns[-5:]
['pub_id_bucketed', 'C14_bucketed', 'C20_level_bucketed', 'user_count', 'device_ip_count']
"""

from __future__ import annotations

import json
import os
from functools import reduce
from typing import Any, Dict, List, Optional, Tuple

from pyspark import StorageLevel, keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCols
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ctr_lab import sql
from ctr_lab.errors import CtrLabError
from ctr_lab.hashing import SqlFeatureHasher, _HasherParams
from ctr_lab.persistence import ParamsReadable, ParamsWritable, read_params, write_metadata
from ctr_lab.schema import NULL_APP, NULL_DEVICE_ID, NULL_SITE

__all__ = [
    "DEFAULT_COUNT_KEYS",
    "MISSING_LEVEL",
    "RARE_LABEL",
    "ROW_FEATURE_COLUMNS",
    "FrequencyEncoder",
    "FrequencyEncoderModel",
    "HashedFeatureVocabulary",
    "HashedFeatureVocabularyModel",
    "RareLevelBucketer",
    "RareLevelBucketerModel",
    "count_col_name",
    "with_all_row_features",
    "with_c20_level",
    "with_publisher",
    "with_time_features",
    "with_user",
]

#: The one level that rare and unseen values become in :class:`RareLevelBucketer`.
RARE_LABEL = "__rare__"

#: The level C20's ``-1`` becomes in :func:`with_c20_level`.
MISSING_LEVEL = "missing"

#: The keys :class:`FrequencyEncoder` counts by default: one column, or several joined by ",".
DEFAULT_COUNT_KEYS = ("user", "user,hour_bucket", "device_ip")

#: The columns :func:`with_all_row_features` adds, in order.
ROW_FEATURE_COLUMNS = (
    "hour_of_day",
    "day_of_week",
    "is_weekend",
    "hour_bucket",
    "pub_id",
    "pub_domain",
    "pub_category",
    "is_app",
    "user",
    "C20_level",
)

#: The count column of a FrequencyEncoderModel's count tables.
_COUNT = "n"
#: A count table Spark's optimizer sizes at or under this many bytes is joined by broadcast.
#: Spark's own line (``spark.sql.autoBroadcastJoinThreshold``) is 10 MB, and its estimate of a
#: count table is a fraction of the table's size in memory: 1.7 MiB for the 366k users of the
#: 1M bench rows, 17.4 MiB for the 2.6 million of 10M, whose two joins then shuffled every row
#: (BENCHMARKS.md, "The frequency counts' joins by broadcast"). Above this line, as for the
#: full Avazu data on a cluster, Spark decides as before.
BROADCAST_COUNTS_BELOW = 32 * 1024 * 1024

_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86400
#: 1970-01-01, day 0 of the epoch, was a Thursday: 3 when Monday is 0.
_EPOCH_WEEKDAY = 3


def _require_columns(df: DataFrame, cols: List[str], where: str, fix: str) -> None:
    """Raise a :class:`CtrLabError` naming the columns ``df`` lacks (a Py4J trace says less)."""
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise CtrLabError(
            f"{where}: column(s) {', '.join(missing)} not found (the DataFrame has "
            f"{', '.join(df.columns)}). Fix: {fix}"
        )


# ----------------------------------------------------------------------------------------------
# Row-level transforms
# ----------------------------------------------------------------------------------------------


def with_time_features(df: DataFrame, time_col: str = "event_time") -> DataFrame:
    """Add the hour of day, the day of the week, a weekend flag and the hour bucket, in UTC.

    Avazu hours are UTC. The values come from the instant's epoch seconds, so they are UTC
    whatever the session or machine time zone (Spark's ``hour()`` and ``dayofweek()`` would use
    the session zone).

    Parameters
    ----------
    df
        A DataFrame with a timestamp column.
    time_col
        Its name.

    Returns
    -------
    DataFrame
        ``df`` with ``hour_of_day`` (int, 0-23), ``day_of_week`` (int, Monday=0 .. Sunday=6, the
        pandas convention the course used: Spark's ``dayofweek`` is Sunday=1 .. Saturday=7),
        ``is_weekend`` (int, 1 on Saturday and Sunday) and ``hour_bucket`` (timestamp, the
        event time truncated to its hour: the time key of ``user,hour_bucket`` counts).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> df = spark.createDataFrame(
    ...     [(datetime(2014, 10, 26, 13, 45, tzinfo=timezone.utc),)], "event_time timestamp"
    ... )
    >>> row = df.transform(with_time_features).first()
    >>> row.hour_of_day, row.day_of_week, row.is_weekend
    (13, 6, 1)
    """
    _require_columns(df, [time_col], "with_time_features", "pass time_col= the timestamp column")
    seconds = F.unix_timestamp(F.col(time_col))  # epoch seconds: no time zone involved
    hours = F.floor(seconds / _SECONDS_PER_HOUR)
    days = F.floor(seconds / _SECONDS_PER_DAY)
    day_of_week = F.pmod(days + _EPOCH_WEEKDAY, 7).cast("int")
    return df.withColumns(
        {
            "hour_of_day": F.pmod(hours, 24).cast("int"),
            "day_of_week": day_of_week,
            "is_weekend": (day_of_week >= 5).cast("int"),
            "hour_bucket": F.timestamp_seconds(hours * _SECONDS_PER_HOUR),
        }
    )


def with_publisher(df: DataFrame) -> DataFrame:
    """Add the publisher of each impression: the site for site traffic, the app for app traffic.

    App traffic is the rows whose ``site_id`` is the "no site" hash ``85f751fd``. The decision is
    taken once, on the original ``site_id``, and drives all three columns. The course's solution
    overwrote ``pub_id`` first and then tested it, so ``pub_domain`` and ``pub_category`` never
    switched to the app values (19 publisher categories instead of 40).

    Returns
    -------
    DataFrame
        ``df`` with ``pub_id``, ``pub_domain``, ``pub_category`` (strings: ``app_*`` for app
        traffic, ``site_*`` otherwise) and ``is_app`` (int 0/1). A null ``site_id`` counts as
        site traffic.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [("85f751fd", "c4e18dd6", "50e219e0", "a1", "ad1", "ac1")],
    ...     "site_id string, site_domain string, site_category string, "
    ...     "app_id string, app_domain string, app_category string",
    ... )
    >>> row = df.transform(with_publisher).first()
    >>> row.pub_id, row.pub_domain, row.pub_category, row.is_app
    ('a1', 'ad1', 'ac1', 1)
    """
    _require_columns(
        df, [*NULL_SITE, *NULL_APP], "with_publisher", "load the data with ctr_lab.load"
    )
    is_app = F.coalesce(F.col("site_id") == F.lit(NULL_SITE["site_id"]), F.lit(False))
    return df.withColumns(
        {
            "pub_id": F.when(is_app, F.col("app_id")).otherwise(F.col("site_id")),
            "pub_domain": F.when(is_app, F.col("app_domain")).otherwise(F.col("site_domain")),
            "pub_category": F.when(is_app, F.col("app_category")).otherwise(F.col("site_category")),
            "is_app": is_app.cast("int"),
        }
    )


def with_user(df: DataFrame) -> DataFrame:
    """Add ``user``: the device id, or ``device_ip + "_" + device_model`` where it is missing.

    82.6% of Avazu rows carry the "no device id" hash ``a99f214a``; for those the ip and the
    device model together stand in for the user.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [("a99f214a", "ip1", "m1"), ("dev7", "ip2", "m2")],
    ...     "device_id string, device_ip string, device_model string",
    ... )
    >>> [r.user for r in df.transform(with_user).collect()]
    ['ip1_m1', 'dev7']
    """
    _require_columns(
        df, ["device_id", "device_ip", "device_model"], "with_user", "load with ctr_lab.load"
    )
    no_device_id = F.col("device_id") == F.lit(NULL_DEVICE_ID)
    ip_and_model = F.concat(F.col("device_ip"), F.lit("_"), F.col("device_model"))
    return df.withColumn("user", F.when(no_device_id, ip_and_model).otherwise(F.col("device_id")))


def with_c20_level(
    df: DataFrame, col_name: str = "C20", output_col: str = "C20_level"
) -> DataFrame:
    """Add C20 as a categorical string in which ``-1`` ("missing") is its own level.

    C20 is ``-1`` on about 47% of Avazu rows, meaning "no value". The course's UDF mapped it onto
    0, merging "missing" with a code; here it becomes the level ``"missing"`` and every other code
    its decimal text, ready for :class:`RareLevelBucketer`, ``StringIndexer`` or
    ``FeatureHasher``. A null C20 is also ``"missing"``. Works on integer and string columns.

    Examples
    --------
    >>> df = spark.createDataFrame([(-1,), (100084,)], "C20 int")
    >>> [r.C20_level for r in df.transform(with_c20_level).collect()]
    ['missing', '100084']
    """
    _require_columns(df, [col_name], "with_c20_level", "pass col_name= the C20 column")
    text = F.col(col_name).cast("string")  # int -> string never fails, even under ANSI
    missing = text.isNull() | (F.trim(text) == "-1")
    return df.withColumn(output_col, F.when(missing, F.lit(MISSING_LEVEL)).otherwise(text))


def with_all_row_features(df: DataFrame, time_col: str = "event_time") -> DataFrame:
    """Add every row-level feature: time, publisher, user and the C20 level.

    The chain of :func:`with_time_features`, :func:`with_publisher`, :func:`with_user` and
    :func:`with_c20_level`; it adds the columns of :data:`ROW_FEATURE_COLUMNS`. Made for the
    canonical schema :func:`ctr_lab.load` returns.

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
    >>> row = df.transform(with_all_row_features).first()
    >>> row.hour_of_day, row.pub_id, row.is_app, row.user, row.C20_level
    (13, 'a1', 1, 'ip1_m1', 'missing')
    """
    return (
        df.transform(with_time_features, time_col=time_col)
        .transform(with_publisher)
        .transform(with_user)
        .transform(with_c20_level)
    )


# ----------------------------------------------------------------------------------------------
# RareLevelBucketer
# ----------------------------------------------------------------------------------------------


def _stacked(dataset: DataFrame, values: Dict[str, str]) -> DataFrame:
    """One row per column and row of ``dataset`` whose value is not null: ``i`` the column's place
    in ``values``, ``v`` its value. ``values`` maps each column to the SQL of its value."""
    pairs = ", ".join(f"named_struct('i', {i}, 'v', {v})" for i, v in enumerate(values.values()))
    stacked = dataset.selectExpr(f"explode(array({pairs})) AS p")
    return stacked.selectExpr("p.i", "p.v").where("v IS NOT NULL")


class _RareLevelBucketerParams(HasInputCols, HasOutputCols):
    """Params shared by :class:`RareLevelBucketer` and :class:`RareLevelBucketerModel`."""

    minCount: Param[int] = Param(
        Params._dummy(),
        "minCount",
        "levels seen fewer than minCount times in the training data become rareLabel (>= 1)",
        typeConverter=TypeConverters.toInt,
    )
    rareLabel: Param[str] = Param(
        Params._dummy(),
        "rareLabel",
        "the level that rare and unseen values become",
        typeConverter=TypeConverters.toString,
    )
    suffix: Param[str] = Param(
        Params._dummy(),
        "suffix",
        "output column name = input column name + suffix, when outputCols is not set",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(minCount=10, rareLabel=RARE_LABEL, suffix="_bucketed")

    def getMinCount(self) -> int:
        """Gets the value of minCount or its default value."""
        return self.getOrDefault(self.minCount)

    def getRareLabel(self) -> str:
        """Gets the value of rareLabel or its default value."""
        return self.getOrDefault(self.rareLabel)

    def getSuffix(self) -> str:
        """Gets the value of suffix or its default value."""
        return self.getOrDefault(self.suffix)

    def _resolved_output_cols(self) -> List[str]:
        inputs = self.getInputCols()
        if self.isSet(self.outputCols):
            outputs = self.getOutputCols()
            if len(outputs) != len(inputs):
                raise CtrLabError(
                    f"{type(self).__name__}: {len(inputs)} inputCols but {len(outputs)} "
                    "outputCols. Fix: give one output name per input column, or leave "
                    "outputCols unset to use the suffix"
                )
            return outputs
        return [c + self.getSuffix() for c in inputs]


class RareLevelBucketer(Estimator, _RareLevelBucketerParams, ParamsReadable, ParamsWritable):
    """Merge the levels seen fewer than ``minCount`` times in the training data into one level.

    Fitting counts every level of every input column in one aggregation (one Spark job) and keeps
    the levels seen at least ``minCount`` times. The fitted model maps kept levels to themselves
    and everything else (rare levels, levels never seen in training, nulls) to ``rareLabel``.
    Input columns may be strings or integers; outputs are strings, ready for ``StringIndexer``,
    ``FeatureHasher`` or one-hot encoding with a bounded number of levels.

    The kept levels are stored in the model as a JSON param, so a saved ``PipelineModel`` carries
    them, and applied by a ``StringIndexerModel`` built from them (a hash map lookup per row in
    the JVM: no join, no shuffle, no giant ``CASE WHEN`` for code generation). That suits up to a
    few hundred thousand kept levels per column; for device_ip or device_id (millions
    of levels) prefer ``FeatureHasher`` or :class:`FrequencyEncoder`.

    Parameters
    ----------
    inputCols
        The columns to bucket.
    outputCols
        Their output names; when unset, each input name + ``suffix``.
    minCount
        Keep a level when the training data has at least this many rows of it (default 10;
        BARS's Avazu_x4_001 benchmark uses 2).
    rareLabel
        The level for rare and unseen values (default ``"__rare__"``).
    suffix
        Output name suffix when ``outputCols`` is not set (default ``"_bucketed"``).

    Examples
    --------
    >>> train_df = spark.createDataFrame([("a",), ("a",), ("b",)], "site_category string")
    >>> model = RareLevelBucketer(inputCols=["site_category"], minCount=2).fit(train_df)
    >>> model.vocabularies
    {'site_category': ['a']}
    >>> new_df = spark.createDataFrame([("a",), ("b",), ("z",)], "site_category string")
    >>> sorted(r[0] for r in model.transform(new_df).select("site_category_bucketed").collect())
    ['__rare__', '__rare__', 'a']
    """

    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        inputCols: Optional[List[str]] = None,
        outputCols: Optional[List[str]] = None,
        minCount: int = 10,
        rareLabel: str = RARE_LABEL,
        suffix: str = "_bucketed",
    ) -> None:
        super().__init__()
        kwargs = self._input_kwargs
        self.setParams(**kwargs)

    @keyword_only
    def setParams(
        self,
        *,
        inputCols: Optional[List[str]] = None,
        outputCols: Optional[List[str]] = None,
        minCount: int = 10,
        rareLabel: str = RARE_LABEL,
        suffix: str = "_bucketed",
    ) -> RareLevelBucketer:
        """Sets params for this RareLevelBucketer."""
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        return self._set(**kwargs)

    def setInputCols(self, value: List[str]) -> RareLevelBucketer:
        """Sets the value of :py:attr:`inputCols`."""
        return self._set(inputCols=value)

    def setOutputCols(self, value: List[str]) -> RareLevelBucketer:
        """Sets the value of :py:attr:`outputCols`."""
        return self._set(outputCols=value)

    def setMinCount(self, value: int) -> RareLevelBucketer:
        """Sets the value of :py:attr:`minCount`."""
        return self._set(minCount=value)

    def setRareLabel(self, value: str) -> RareLevelBucketer:
        """Sets the value of :py:attr:`rareLabel`."""
        return self._set(rareLabel=value)

    def setSuffix(self, value: str) -> RareLevelBucketer:
        """Sets the value of :py:attr:`suffix`."""
        return self._set(suffix=value)

    def _fit(self, dataset: DataFrame) -> RareLevelBucketerModel:
        if not self.isDefined(self.inputCols) or not self.getInputCols():
            raise CtrLabError(
                "RareLevelBucketer: inputCols is not set. Fix: "
                "RareLevelBucketer(inputCols=['site_domain', ...])"
            )
        inputs = self.getInputCols()
        outputs = self._resolved_output_cols()
        min_count = self.getMinCount()
        if min_count < 1:
            raise CtrLabError(
                f"RareLevelBucketer: minCount is {min_count}. Fix: use a count of 1 or more"
            )
        _require_columns(
            dataset, inputs, "RareLevelBucketer.fit", "add them first or fix inputCols"
        )

        # All columns in one pass: stack (column index, value as text) and count each pair.
        kept = (
            _stacked(dataset, {c: f"CAST({sql.name(c)} AS STRING)" for c in inputs})
            .groupBy("i", "v")
            .agg(F.expr("count(1) AS n"))
            .where(f"n >= {int(min_count)}")
            .select("i", "v")
            .collect()
        )
        vocab: Dict[str, List[str]] = {c: [] for c in inputs}
        for row in kept:
            vocab[inputs[row["i"]]].append(row["v"])
        vocab = {c: sorted(levels) for c, levels in vocab.items()}

        model = RareLevelBucketerModel()
        self._copyValues(model)
        model._set(outputCols=outputs, vocabulariesJson=json.dumps(vocab, separators=(",", ":")))
        return model._resetUid(self.uid)


class RareLevelBucketerModel(Model, _RareLevelBucketerParams, ParamsReadable, ParamsWritable):
    """A fitted :class:`RareLevelBucketer`: kept levels map to themselves, others to rareLabel.

    The kept levels are the ``vocabulariesJson`` param (a JSON object ``{input column: [levels]}``),
    saved and loaded with the model. See :attr:`vocabularies`.
    """

    vocabulariesJson: Param[str] = Param(
        Params._dummy(),
        "vocabulariesJson",
        "the kept levels of each input column, as JSON {column: [level, ...]}",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(vocabulariesJson="{}")

    @property
    def vocabularies(self) -> Dict[str, List[str]]:
        """The kept levels of each input column, sorted."""
        return json.loads(self.getOrDefault(self.vocabulariesJson))

    def setRareLabel(self, value: str) -> RareLevelBucketerModel:
        """Sets the value of :py:attr:`rareLabel`."""
        return self._set(rareLabel=value)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        inputs = self.getInputCols()
        outputs = self._resolved_output_cols()
        _require_columns(
            dataset, inputs, "RareLevelBucketerModel.transform", "add them before this stage"
        )
        vocab = self.vocabularies
        rare = sql.text(self.getRareLabel())
        # A StringIndexerModel built from the kept levels does the lookups: one JVM hash map per
        # column, applied row by row with no join, no shuffle and no Python, and unseen levels
        # and nulls go to its extra "keep" index. A kept level is its own output, so only the
        # test "index < number of kept levels" is needed from the indexer.
        with_levels = [(i, o) for i, o in zip(inputs, outputs) if vocab.get(i)]
        tmp = {i: f"__rlb_index_{k}" for k, (i, _) in enumerate(with_levels)}
        out_df = dataset
        if with_levels:
            indexer = _string_indexer_of(
                [vocab[i] for i, _ in with_levels],
                inputCols=[i for i, _ in with_levels],
                outputCols=[tmp[i] for i, _ in with_levels],
            )
            out_df = indexer.transform(out_df)
        values: Dict[str, Column] = {}
        for in_col, out_col in zip(inputs, outputs):
            levels = vocab.get(in_col, [])
            if levels:
                kept = f"{sql.name(tmp[in_col])} < {len(levels)}D"  # the index is a double
                level = f"CAST({sql.name(in_col)} AS STRING)"
                values[out_col] = F.expr(f"CASE WHEN {kept} THEN {level} ELSE {rare} END")
            else:
                values[out_col] = F.expr(rare)
        return out_df.withColumns(values).drop(*tmp.values())


def _string_indexer_of(labels: List[List[str]], inputCols: List[str], outputCols: List[str]):
    """A ``StringIndexerModel`` of these labels (unseen values kept), built in a few JVM calls.

    ``StringIndexerModel.from_arrays_of_labels`` fills its Java arrays one Py4J call per label:
    about a second per 4,000 levels, at every transform. Here each column's labels cross as one
    string that the JVM splits.
    """
    from pyspark import SparkContext
    from pyspark.ml.feature import StringIndexerModel

    sep = "\x01"
    sc = SparkContext._active_spark_context
    gateway = sc._gateway if sc is not None else None
    if gateway is None or any(sep in level for levels in labels for level in levels):
        return StringIndexerModel.from_arrays_of_labels(
            labels, inputCols=inputCols, outputCols=outputCols, handleInvalid="keep"
        )
    jvm = gateway.jvm
    splitter = jvm.java.util.regex.Pattern.compile(jvm.java.util.regex.Pattern.quote(sep))
    jlabels = gateway.new_array(jvm.java.lang.String, len(labels), 0)
    for i, levels in enumerate(labels):
        jlabels[i] = splitter.split(sep.join(levels), -1)
    model = StringIndexerModel._create_from_java_class(
        "org.apache.spark.ml.feature.StringIndexerModel", jlabels
    )
    return model.setInputCols(inputCols).setOutputCols(outputCols).setHandleInvalid("keep")


# ----------------------------------------------------------------------------------------------
# FrequencyEncoder
# ----------------------------------------------------------------------------------------------


def _key_columns(key: str) -> List[str]:
    return [part.strip() for part in key.split(",") if part.strip()]


def count_col_name(key: str) -> str:
    """The default output column of a :class:`FrequencyEncoder` key.

    The key's columns joined by ``_`` (a trailing ``_bucket`` dropped from each), then ``_count``.

    Examples
    --------
    >>> count_col_name("user"), count_col_name("user,hour_bucket")
    ('user_count', 'user_hour_count')
    """
    parts = [c[: -len("_bucket")] if c.endswith("_bucket") else c for c in _key_columns(key)]
    return "_".join(parts) + "_count"


class _FrequencyEncoderParams(Params):
    """Params shared by :class:`FrequencyEncoder` and :class:`FrequencyEncoderModel`."""

    keys: Param[List[str]] = Param(
        Params._dummy(),
        "keys",
        "what to count: each key is one column or several joined by ',' (e.g. 'user,hour_bucket')",
        typeConverter=TypeConverters.toListString,
    )
    outputCols: Param[List[str]] = Param(
        Params._dummy(),
        "outputCols",
        "one output column per key; when unset, count_col_name(key)",
        typeConverter=TypeConverters.toListString,
    )
    logScale: Param[bool] = Param(
        Params._dummy(),
        "logScale",
        "output log1p(count) as a double instead of the count as a long",
        typeConverter=TypeConverters.toBoolean,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(keys=list(DEFAULT_COUNT_KEYS), logScale=False)

    def getKeys(self) -> List[str]:
        """Gets the value of keys or its default value."""
        return self.getOrDefault(self.keys)

    def getOutputCols(self) -> List[str]:
        """Gets the value of outputCols, or the default names derived from the keys."""
        if self.isSet(self.outputCols):
            return self.getOrDefault(self.outputCols)
        return [count_col_name(k) for k in self.getKeys()]

    def getLogScale(self) -> bool:
        """Gets the value of logScale or its default value."""
        return self.getOrDefault(self.logScale)

    def _checked_keys(self) -> List[List[str]]:
        keys = [_key_columns(k) for k in self.getKeys()]
        if not keys or not all(keys):
            raise CtrLabError(
                f"{type(self).__name__}: keys {self.getKeys()!r} has an empty key. Fix: give "
                "column names, several joined by ',' (e.g. ['user', 'user,hour_bucket'])"
            )
        if len(self.getOutputCols()) != len(keys):
            raise CtrLabError(
                f"{type(self).__name__}: {len(keys)} keys but {len(self.getOutputCols())} "
                "outputCols. Fix: give one output name per key, or leave outputCols unset"
            )
        return keys


class FrequencyEncoder(Estimator, _FrequencyEncoderParams, ParamsReadable, ParamsWritable):
    """Count how often each key occurs in the training data, and add that count to any data.

    The course computed ``user_count`` and ``user_hour_count`` over all rows before splitting, so
    a test row's count included the test rows themselves. Here :meth:`fit` counts the training
    rows only (one aggregation per key, cached the first time it is used); :meth:`transform`
    looks each row's key up in those counts (a left join, by broadcast when Spark sizes the
    table under :data:`BROADCAST_COUNTS_BELOW`), with 0 for keys the training data never had. A
    saved model writes the count tables as Parquet inside its folder, so ``PipelineModel.load``
    brings them back.

    With the default keys the input needs ``user`` (:func:`with_user`), ``hour_bucket``
    (:func:`with_time_features`) and ``device_ip``. Keys containing ``hour_bucket`` only
    help when training and scored rows share hours (a random split): on a time-ordered split
    every later row's hour is new, so its ``user_hour_count`` is 0.

    Parameters
    ----------
    keys
        What to count: each key is a column, or several joined by ``,``. Default
        ``["user", "user,hour_bucket", "device_ip"]``.
    outputCols
        One output column per key; default :func:`count_col_name` of each key
        (``user_count``, ``user_hour_count``, ``device_ip_count``).
    logScale
        When true, output ``log1p(count)`` (double) instead of the count (long). Default false.

    Rows with a null in a key column are not counted and get 0.

    Examples
    --------
    >>> train_df = spark.createDataFrame([("u1",), ("u1",), ("u2",)], "user string")
    >>> model = FrequencyEncoder(keys=["user"]).fit(train_df)
    >>> new_df = spark.createDataFrame([("u1",), ("u3",)], "user string")
    >>> sorted(tuple(r) for r in model.transform(new_df).collect())
    [('u1', 2), ('u3', 0)]
    """

    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        keys: Optional[List[str]] = None,
        outputCols: Optional[List[str]] = None,
        logScale: bool = False,
    ) -> None:
        super().__init__()
        kwargs = self._input_kwargs
        self.setParams(**kwargs)

    @keyword_only
    def setParams(
        self,
        *,
        keys: Optional[List[str]] = None,
        outputCols: Optional[List[str]] = None,
        logScale: bool = False,
    ) -> FrequencyEncoder:
        """Sets params for this FrequencyEncoder."""
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        return self._set(**kwargs)

    def setKeys(self, value: List[str]) -> FrequencyEncoder:
        """Sets the value of :py:attr:`keys`."""
        return self._set(keys=value)

    def setOutputCols(self, value: List[str]) -> FrequencyEncoder:
        """Sets the value of :py:attr:`outputCols`."""
        return self._set(outputCols=value)

    def setLogScale(self, value: bool) -> FrequencyEncoder:
        """Sets the value of :py:attr:`logScale`."""
        return self._set(logScale=value)

    def _fit(self, dataset: DataFrame) -> FrequencyEncoderModel:
        keys = self._checked_keys()
        _require_columns(
            dataset,
            sorted({c for cols in keys for c in cols}),
            "FrequencyEncoder.fit",
            "add them first (user: with_user, hour_bucket: with_time_features) or change keys",
        )
        tables = []
        for cols in keys:
            counted = (
                dataset.where(reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in cols]))
                .groupBy(*cols)
                .agg(F.count(F.lit(1)).alias(_COUNT))
                # Cached when first used, then every transform (and save) reuses it.
                .persist(StorageLevel.MEMORY_AND_DISK)
            )
            tables.append(counted)
        model = FrequencyEncoderModel()
        self._copyValues(model)
        model._set(outputCols=self.getOutputCols())
        model._set_counts(tables)
        return model._resetUid(self.uid)


class FrequencyEncoderModel(Model, _FrequencyEncoderParams, MLReadable, MLWritable):
    """A fitted :class:`FrequencyEncoder`: the training counts of each key, as DataFrames.

    :attr:`counts` holds one table per key (the key columns and the count ``n``). ``save``
    writes the params as Spark's usual ``metadata`` and each table as Parquet under
    ``data/key_<i>``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: Optional[List[DataFrame]] = None

    def _set_counts(self, tables: List[DataFrame]) -> None:
        self._counts = list(tables)

    @property
    def counts(self) -> List[DataFrame]:
        """The training counts, one DataFrame per key: the key columns and ``n``."""
        if self._counts is None:
            raise CtrLabError(
                "FrequencyEncoderModel has no counts. Fix: get the model from "
                "FrequencyEncoder(...).fit(train_df) or FrequencyEncoderModel.load(path)"
            )
        return self._counts

    def setLogScale(self, value: bool) -> FrequencyEncoderModel:
        """Sets the value of :py:attr:`logScale`."""
        return self._set(logScale=value)

    def unpersist(self) -> FrequencyEncoderModel:
        """Release the cached count tables (a later transform recomputes or re-reads them)."""
        for table in self.counts:
            table.unpersist()
        return self

    def _transform(self, dataset: DataFrame) -> DataFrame:
        keys = self._checked_keys()
        outputs = self.getOutputCols()
        _require_columns(
            dataset,
            sorted({c for cols in keys for c in cols}),
            "FrequencyEncoderModel.transform",
            "add the key columns with the same transforms used before fitting",
        )
        out_df = dataset
        for i, (cols, out_col, table) in enumerate(zip(keys, outputs, self.counts)):
            # Temporary names keep the join unambiguous and leave dataset's column order as is.
            tmp = [f"__fe{i}_{j}" for j in range(len(cols))]
            tmp_n = f"__fe{i}_n"
            right = table.select(
                *[F.col(c).alias(t) for c, t in zip(cols, tmp)], F.col(_COUNT).alias(tmp_n)
            )
            if _estimated_bytes(table) <= BROADCAST_COUNTS_BELOW:
                right = F.broadcast(right)
            on = reduce(lambda a, b: a & b, [F.col(c) == F.col(t) for c, t in zip(cols, tmp)])
            count = F.coalesce(F.col(tmp_n), F.lit(0)).cast("long")
            value: Column = F.log1p(count.cast("double")) if self.getLogScale() else count
            out_df = out_df.join(right, on, how="left").withColumn(out_col, value).drop(*tmp, tmp_n)
        return out_df

    def write(self) -> MLWriter:
        """Returns an MLWriter that saves the params and the count tables."""
        return _FrequencyEncoderModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        """Returns an MLReader that loads the params and the count tables."""
        return _FrequencyEncoderModelReader()


def _estimated_bytes(df: DataFrame) -> int:
    """The size Spark's optimizer estimates for ``df`` (what its broadcast threshold reads)."""
    return int(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())


def _count_table_path(path: str, i: int) -> str:
    return os.path.join(path, "data", f"key_{i}")


class _FrequencyEncoderModelWriter(MLWriter):
    def __init__(self, instance: FrequencyEncoderModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        write_metadata(self.sparkSession, path, self.instance)
        for i, table in enumerate(self.instance.counts):
            table.write.parquet(_count_table_path(path, i))


class _FrequencyEncoderModelReader(MLReader):
    def load(self, path: str) -> FrequencyEncoderModel:
        spark = self.sparkSession
        model = read_params(spark, path)
        n_keys = len(model.getKeys())
        model._set_counts([spark.read.parquet(_count_table_path(path, i)) for i in range(n_keys)])
        return model


# ----------------------------------------------------------------------------------------------
# HashedFeatureVocabulary
# ----------------------------------------------------------------------------------------------


class _HashedFeatureVocabularyParams(_HasherParams):
    """Params shared by :class:`HashedFeatureVocabulary` and its model (its hasher's own)."""

    maxLevels: Param[int] = Param(
        Params._dummy(),
        "maxLevels",
        "keep the names of at most this many levels per column, the most frequent first (>= 1)",
        typeConverter=TypeConverters.toInt,
    )
    hasher: Param[str] = Param(
        Params._dummy(),
        "hasher",
        "the hasher's class: FeatureHasher (Spark's) or SqlFeatureHasher (ctr_lab.hashing)",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(maxLevels=5000, hasher="FeatureHasher")

    def getMaxLevels(self) -> int:
        """Gets the value of maxLevels or its default value."""
        return self.getOrDefault(self.maxLevels)

    def _hasher(self, output_col: str):
        from pyspark.ml.feature import FeatureHasher

        kind = self.getOrDefault(self.hasher)
        classes = {"FeatureHasher": FeatureHasher, "SqlFeatureHasher": SqlFeatureHasher}
        if kind not in classes:
            raise CtrLabError(
                f"HashedFeatureVocabulary: hasher is {kind!r}. Fix: FeatureHasher or "
                "SqlFeatureHasher (HashedFeatureVocabulary.of(hasher) sets it)"
            )
        return classes[kind](
            inputCols=self.getInputCols(),
            categoricalCols=self.getCategoricalCols(),
            numFeatures=self.getNumFeatures(),
            outputCol=output_col,
        )


class HashedFeatureVocabulary(
    Estimator, _HashedFeatureVocabularyParams, ParamsReadable, ParamsWritable
):
    """Record which (column, value) pairs a hasher sends to which feature index.

    Hashing throws the names of features away: a coefficient of a hashed model is only an
    index. Placed just before a hasher (Spark's ``FeatureHasher`` or
    :class:`ctr_lab.hashing.SqlFeatureHasher`) with the same params (see :meth:`of`), this
    stage counts the levels of every input column on the training data (one aggregation) and
    keeps the ``maxLevels`` most frequent per column; it then finds the index of each kept level
    by running that hasher with the same params over a small DataFrame holding one level per
    row, so the indices are the hasher's own, not a re-implementation of its hash. A numeric
    (non-categorical) column has one index: that of its name for ``FeatureHasher``, its own
    place after the hashed ones for ``SqlFeatureHasher``. The fitted model passes rows
    through unchanged and saves the vocabulary inside the ``PipelineModel``, so a reloaded
    model can still name its coefficients (:meth:`HashedFeatureVocabularyModel.names`,
    :func:`ctr_lab.evaluate.top_coefficients`). An index shared by several levels (a hash
    collision) names all of them.

    String and boolean columns are always categorical for either hasher; numeric columns
    only when listed in ``categoricalCols``. Categorical levels are named ``column=value``
    (``FeatureHasher`` hashes that very string).

    Parameters
    ----------
    inputCols, categoricalCols, numFeatures
        The hasher's params.
    maxLevels
        How many levels per column to name, the most frequent first (default 5000).
    hasher
        The hasher's class name: ``"FeatureHasher"`` (the default) or ``"SqlFeatureHasher"``.

    Examples
    --------
    >>> from pyspark.ml.feature import FeatureHasher
    >>> hasher = FeatureHasher(inputCols=["site_category", "C1"], categoricalCols=["C1"],
    ...                        numFeatures=1 << 10, outputCol="features")
    >>> df = spark.createDataFrame(
    ...     [("28905ebd", 1005), ("28905ebd", 1002)], "site_category string, C1 int"
    ... )
    >>> vocab = HashedFeatureVocabulary.of(hasher).fit(df)
    >>> sorted(name for names in vocab.names().values() for name in names)
    ['C1=1002', 'C1=1005', 'site_category=28905ebd']
    """

    _input_kwargs: Dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        inputCols: Optional[List[str]] = None,
        categoricalCols: Optional[List[str]] = None,
        numFeatures: Optional[int] = None,
        maxLevels: Optional[int] = None,
        hasher: Optional[str] = None,
    ) -> None:
        super().__init__()
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    @classmethod
    def of(cls, hasher: Any, maxLevels: int = 5000) -> HashedFeatureVocabulary:
        """A vocabulary stage with the params of ``hasher``.

        ``hasher`` is Spark's ``FeatureHasher`` or :class:`ctr_lab.hashing.SqlFeatureHasher`.
        """
        categorical = hasher.getCategoricalCols() if hasher.isSet(hasher.categoricalCols) else []
        vocabulary = cls(
            inputCols=hasher.getInputCols(),
            categoricalCols=list(categorical),
            numFeatures=hasher.getNumFeatures(),
            maxLevels=maxLevels,
        )
        return vocabulary._set(hasher=type(hasher).__name__)

    def _fit(self, dataset: DataFrame) -> HashedFeatureVocabularyModel:
        from pyspark.sql import Window

        if not self.isDefined(self.inputCols) or not self.getInputCols():
            raise CtrLabError(
                "HashedFeatureVocabulary: inputCols is not set. Fix: "
                "HashedFeatureVocabulary.of(feature_hasher)"
            )
        if self.getMaxLevels() < 1:
            raise CtrLabError(
                f"HashedFeatureVocabulary: maxLevels is {self.getMaxLevels()}. Fix: use 1 or more"
            )
        inputs = self.getInputCols()
        _require_columns(
            dataset, inputs, "HashedFeatureVocabulary.fit", "place it just before the hasher"
        )
        types = {f.name: f.dataType for f in dataset.schema.fields}
        is_cat = self.categorical(dataset)

        # 1. Count the levels of all columns in one aggregation; a numeric column is one
        #    "level" (the empty string), counted on the rows where it is present.
        def level(c: str) -> str:
            if is_cat[c]:
                return f"CAST({sql.name(c)} AS STRING)"
            return f"CASE WHEN {sql.name(c)} IS NOT NULL THEN '' END"

        counted = (
            _stacked(dataset, {c: level(c) for c in inputs})
            .groupBy("i", "v")
            .agg(F.expr("count(1) AS n"))
        )
        rank = F.row_number().over(Window.partitionBy("i").orderBy(F.desc("n"), F.asc("v")))
        top = counted.withColumn("r", rank).where(F.col("r") <= self.getMaxLevels()).drop("r")

        # 2. One row per kept level, holding that level in its own column and null elsewhere
        #    (both hashers skip nulls): hashing the row gives the level's index alone.
        one_hot_rows = []
        for i, c in enumerate(inputs):
            value = "v" if is_cat[c] else "1.0D"
            kind = types[c].simpleString()
            one_hot_rows.append(
                f"CASE WHEN i = {i} THEN CAST({value} AS {kind}) END AS {sql.name(c)}"
            )
        probe = top.selectExpr("i", "v", "n", *one_hot_rows)
        hashed = self._hasher("__hfv_features").transform(probe)
        entries = []
        for row in hashed.select("i", "v", "n", "__hfv_features").collect():
            indices = row["__hfv_features"].indices
            if len(indices) != 1:  # a level whose value the hasher drops (e.g. numeric 0)
                continue
            column = inputs[row["i"]]
            entries.append(
                [column, row["v"] if is_cat[column] else None, int(indices[0]), row["n"]]
            )
        entries.sort(key=lambda e: (inputs.index(e[0]), -e[3], "" if e[1] is None else e[1]))

        model = HashedFeatureVocabularyModel()
        self._copyValues(model)
        model._set(vocabularyJson=json.dumps(entries, separators=(",", ":")))
        return model._resetUid(self.uid)


class HashedFeatureVocabularyModel(
    Model, _HashedFeatureVocabularyParams, ParamsReadable, ParamsWritable
):
    """A fitted :class:`HashedFeatureVocabulary`: rows pass through; the vocabulary is kept.

    The vocabulary is the ``vocabularyJson`` param, a JSON list of
    ``[column, value, index, training count]`` (``value`` null for a numeric column), saved and
    loaded with the model.
    """

    vocabularyJson: Param[str] = Param(
        Params._dummy(),
        "vocabularyJson",
        "JSON list of [column, value or null, feature index, training count]",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(vocabularyJson="[]")

    @property
    def vocabulary(self) -> List[Tuple[str, Optional[str], int, int]]:
        """(column, value or None, feature index, training count) of every named level."""
        entries = json.loads(self.getOrDefault(self.vocabularyJson))
        return [(str(c), v, int(i), int(n)) for c, v, i, n in entries]

    def names(self) -> Dict[int, List[str]]:
        """Feature index -> the names of the levels hashed to it, the most frequent first.

        A categorical level is named ``column=value`` (what the hasher hashes), a numeric
        column by its name. More than one name at an index is a hash collision.
        """
        out: Dict[int, List[Tuple[int, str]]] = {}
        for column, value, index, count in self.vocabulary:
            name = column if value is None else f"{column}={value}"
            out.setdefault(index, []).append((-count, name))
        return {i: [name for _, name in sorted(pairs)] for i, pairs in out.items()}

    def to_pandas(self):
        """The vocabulary as a pandas DataFrame: column, value, index, count, shared_by."""
        import pandas as pd

        table = pd.DataFrame(self.vocabulary, columns=["column", "value", "index", "count"])
        table["shared_by"] = table.groupby("index")["index"].transform("size")
        return table

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return dataset
