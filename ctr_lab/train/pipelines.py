"""The named pipelines (``course_baseline``, ``course_improved``, ``recommended``) and fitting them
on features computed once.
"""

from __future__ import annotations

import math
import numbers
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import (
    OneHotEncoder,
    SQLTransformer,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ctr_lab.errors import CtrLabError
from ctr_lab.features import (
    FrequencyEncoder,
    HashedFeatureVocabulary,
    RareLevelBucketer,
)
from ctr_lab.hashing import SqlFeatureHasher
from ctr_lab.train.names import PIPELINE_NAMES
from ctr_lab.train.stages import _WEIGHT_COL, ClassWeighter, ProbabilityRecalibrator, RowFeatures

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


#: Attribute of a LogisticRegression whose regParam is set at fit time to this / training rows.
_PRIOR_ROWS_ATTR = "_ctr_lab_prior_rows"
#: ``recommended``'s default L2 strength, in rows: regParam = RECOMMENDED_PRIOR_ROWS / rows.
RECOMMENDED_PRIOR_ROWS = 10.0


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
#: Integer-coded columns hashed as categories (the hasher's categoricalCols).
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
#: The UTC day of ``event_time``, in days since the epoch (no time zone involved).
_UTC_DAY_SQL = "floor(unix_timestamp(event_time) / 86400)"
#: Impressions of the same user in the same hour / day *within the scored batch* (a window).
#: The hour's window names the (UTC) day too, which the hour fixes: the same groups, but both
#: windows now start with the day's keys, so Spark shuffles and sorts the rows once for both
#: (one exchange on ``user, day`` instead of one per window; BENCHMARKS.md, History 2026-12-03).
_BATCH_COUNTS_SQL = (
    f"SELECT *, log1p(count(1) OVER (PARTITION BY user, {_UTC_DAY_SQL}, hour_bucket)) "
    f"AS batch_user_hour, log1p(count(1) OVER (PARTITION BY user, {_UTC_DAY_SQL})) "
    "AS batch_user_day FROM __THIS__"
)


#: A name for a column of one's own (``extra_features``).
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _extra_features(settings: Dict[str, Any]) -> Tuple[List[Any], List[str]]:
    """The stage adding ``extra_features`` (name -> Spark SQL expression) as text columns.

    A :class:`SQLTransformer` right after :class:`RowFeatures`: saved in the model with its
    expressions, so whoever loads the model (``ctr-lab grade``, in its own process) computes
    the same columns from canonical rows.
    """
    extra = settings.get("extra_features") or {}
    if not extra:
        return [], []
    added = ", ".join(f"CAST(({expr}) AS STRING) AS {name}" for name, expr in extra.items())
    return [SQLTransformer(statement=f"SELECT *, {added} FROM __THIS__")], list(extra)


def check_extra_features(extra: Optional[Dict[str, str]], train_df: DataFrame) -> None:
    """Refuse an ``extra_features`` expression Spark cannot compute on ``train_df``'s rows.

    Each is analysed on the rows :class:`RowFeatures` gives (where the pipeline computes it),
    which runs no Spark job; the error names the column, the expression and Spark's first line.
    """
    from pyspark.errors import PySparkException

    if not extra:
        return
    rows = RowFeatures().transform(train_df)
    for name, expr in extra.items():
        try:
            rows.select(F.expr(expr))
        except PySparkException as exc:  # parse and analysis errors alike
            first = str(exc).strip().splitlines()[0][:300]
            raise CtrLabError(
                f"extra_features {name!r}: {expr!r}: Spark cannot compute it: {first}. Fix: "
                'correct the expression (cl.exercises.check("assignment-feature", ...) '
                "tries one)"
            ) from None


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
    utc_date = f"date_from_unix_date(CAST({_UTC_DAY_SQL} AS INT))"
    time_sql = SQLTransformer(
        statement=(
            f"SELECT *, CAST(month({utc_date}) AS DOUBLE) AS month, "
            f"CAST(dayofmonth({utc_date}) AS DOUBLE) AS day, "
            "CAST(hour_of_day AS DOUBLE) AS hour FROM __THIS__"
        )
    )
    extra, extra_cols = _extra_features(settings)
    encoders, encoded = _one_hot(COURSE_CATEGORICALS + extra_cols)
    assembler = VectorAssembler(
        inputCols=["month", "day", "hour", *encoded], outputCol="features", handleInvalid="keep"
    )
    return [RowFeatures(), *extra, time_sql, *encoders, assembler], _lr(settings, {})


def _course_improved(settings: Dict[str, Any]) -> Tuple[List[Any], LogisticRegression]:
    min_count = int(settings.get("minCount", 10))
    bucketed = [f"{c}_bucketed" for c in _HIGH_CARDINALITY]
    counts = FrequencyEncoder(keys=_COUNT_KEYS, logScale=True)
    extra, extra_cols = _extra_features(settings)
    encoders, encoded = _one_hot(_IMPROVED_LOW + bucketed + extra_cols)
    assembler = VectorAssembler(
        inputCols=[*encoded, *counts.getOutputCols()], outputCol="features", handleInvalid="keep"
    )
    stages = [
        RowFeatures(),
        *extra,
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
    extra, extra_cols = _extra_features(settings)
    # Spark SQL's own expressions build the vectors: warm, 2.6 s against Spark ML's FeatureHasher's
    # 9.4 s (its Scala closure and sorted Stream per row; BENCHMARKS.md, "Vectors without lambda
    # functions").
    hasher = SqlFeatureHasher(
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
            *extra_cols,
        ],
        categoricalCols=[*_HASHED_INT, "hour_of_day", "day_of_week"],
        numFeatures=num_features,
        outputCol="features",
    )
    stages = [
        RowFeatures(),
        *extra,
        # The batch counts' window first: its shuffle then moves the rows as read, not the
        # bucketed, counted and crossed columns the later stages add (61 MiB instead of 102 at
        # 1M; BENCHMARKS.md, "The batch counts' window first").
        SQLTransformer(statement=_BATCH_COUNTS_SQL),
        RareLevelBucketer(inputCols=_HIGH_CARDINALITY, minCount=min_count),
        counts,
        SQLTransformer(statement=f"SELECT *, {crosses} FROM __THIS__"),
        # Names the hashed features: (column, value) -> index, kept in the saved model.
        HashedFeatureVocabulary.of(hasher),
        hasher,
    ]
    defaults = {
        "regParam": RECOMMENDED_PRIOR_ROWS / 200_000,
        "maxIter": 60,
        "tol": 1e-6,
        "standardization": False,
        # Each of the LR's blocks of rows costs one more pass over all numFeatures per L-BFGS
        # pass (the intercept's centring): 4 MB blocks make a quarter of Spark's 1 MB blocks.
        # The 10M fit on a 4 GiB driver took 209 s instead of 248 s; 16 MB blocks ran that
        # driver out of heap while stacking them (BENCHMARKS.md, "Tuning experiments").
        "maxBlockSizeInMB": 4.0,
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
#: Each named pipeline's builder: ``_<name>`` above, for every name in :data:`PIPELINE_NAMES`.
PIPELINES: Dict[str, Callable[[Dict[str, Any]], Tuple[List[Any], LogisticRegression]]] = {
    name: globals()[f"_{name}"] for name in PIPELINE_NAMES
}


#: The value each numeric or true/false setting of :func:`build_pipeline` takes.
SETTING_KINDS = {
    "regParam": "a number",
    "elasticNetParam": "a number",
    "maxIter": "a whole number",
    "tol": "a number",
    "standardization": "true or false",
    "threshold": "a number",
    "class_weight": "a number",
    "minCount": "a whole number",
    "numFeatures": "a whole number",
}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "true or false":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if not math.isfinite(float(value)):
        return False
    return kind == "a number" or float(value).is_integer()


def check_settings(
    name: str,
    settings: Dict[str, Any],
    who: str = "build_pipeline",
    more: Optional[Dict[str, str]] = None,
) -> None:
    """Refuse a pipeline name, a setting or a setting's value that :func:`build_pipeline` lacks.

    ``who`` starts the one-line message (``ctr-lab bench`` gives ``--set``); ``more`` allows
    settings of the caller's own, each with its kind as in :data:`SETTING_KINDS`.

    Examples
    --------
    >>> check_settings("recommended", {"maxIter": 20, "regParam": 1e-4})
    >>> check_settings("recommended", {"maxIter": "abc"}, who="--set")
    Traceback (most recent call last):
    ...
    ctr_lab.errors.CtrLabError: --set maxIter='abc'. Fix: give maxIter a whole number
    """
    if name not in PIPELINES:
        raise CtrLabError(f"no pipeline named {name!r}. Fix: use one of {', '.join(PIPELINES)}")
    kinds = {**SETTING_KINDS, **(more or {})}
    allowed = {*LR_SETTINGS, "minCount", "numFeatures", "extra_features", *kinds}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise CtrLabError(f"{who}: unknown setting(s) {unknown}. Fix: use {sorted(allowed)}")
    extra = settings.get("extra_features") or {}
    if not isinstance(extra, dict):
        raise CtrLabError(
            f"{who}: extra_features is a {type(extra).__name__}. Fix: give a dict of "
            'column name -> Spark SQL expression, e.g. {"model_hour": "concat(device_model, '
            'hour_of_day)"}'
        )
    for col, expr in extra.items():
        if not (isinstance(col, str) and _COLUMN_NAME.match(col)) or not isinstance(expr, str):
            raise CtrLabError(
                f"{who}: extra_features entry {col!r}: {expr!r}. Fix: a name of letters, "
                "digits and _ (not starting with a digit) -> a Spark SQL expression as text"
            )
    for key, value in settings.items():
        kind = kinds.get(key)
        if kind is not None and not _is_kind(value, kind):
            raise CtrLabError(f"{who} {key}={value!r}. Fix: give {key} {kind}")
    w = settings.get("class_weight")
    if w is not None and not float(w) > 0:
        raise CtrLabError(f"{who}: class_weight {w} must be > 0. Fix: give a weight above 0")


#: A column a pipeline's SQL statement names: ``AS name`` before a comma or ``FROM``.
_SQL_ALIAS = re.compile(r"\bAS\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:,|FROM\b)", re.I)


def _columns_made(stages: Sequence[Any], skip: Any = None) -> List[str]:
    """The columns ``stages`` (all but ``skip``) add: their output params and SQL aliases."""
    made: List[str] = []
    for stage in stages:
        if stage is skip:
            continue
        if isinstance(stage, SQLTransformer):
            made.extend(_SQL_ALIAS.findall(stage.getStatement()))
        for getter in ("_resolved_output_cols", "getOutputCols", "getOutputCol"):
            if hasattr(stage, getter):
                try:
                    found = getattr(stage, getter)()
                except KeyError:  # a param without a value: no column
                    continue
                made.extend([found] if isinstance(found, str) else list(found))
        for param in ("weightCol", "rawPredictionCol", "probabilityCol", "predictionCol"):
            if stage.hasParam(param) and stage.isDefined(stage.getParam(param)):
                made.append(stage.getOrDefault(stage.getParam(param)))
    return made


def _refuse_taken_names(name: str, extra: Dict[str, str], stages: Sequence[Any]) -> None:
    """Refuse an ``extra_features`` name that the data or ``name``'s stages already give a column.

    Spark compares column names without case; a second ``hour`` would make every later stage's
    ``hour`` ambiguous, an error the fit met only after the first stages ran.
    """
    from ctr_lab.features import ROW_FEATURE_COLUMNS
    from ctr_lab.schema import CANONICAL_COLUMNS

    own = next(
        (
            s
            for s in stages
            if isinstance(s, SQLTransformer)
            and s.getStatement() == _extra_features({"extra_features": extra})[0][0].getStatement()
        ),
        None,
    )
    taken = {
        c.lower(): c
        for c in [*CANONICAL_COLUMNS, *ROW_FEATURE_COLUMNS, *_columns_made(stages, skip=own)]
    }
    clashes = sorted(col for col in extra if col.lower() in taken)
    if clashes:
        raise CtrLabError(
            f"build_pipeline({name!r}): extra_features name(s) {clashes} are columns the data or "
            f"the pipeline already has ({', '.join(taken[c.lower()] for c in clashes)}). Fix: "
            "give your columns new names (e.g. my_" + clashes[0] + ")"
        )


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
        :class:`~ctr_lab.hashing.SqlFeatureHasher` (``numFeatures``, default 2^18 hashed
        indices, then one per numeric column; integer codes as ``categoricalCols``) over
        the same columns with ``minCount=3``, hour of day, day of week, log counts and crosses
        hour x pub_category, banner_pos x device_type, hour x day_of_week, pub_id x C18,
        pub_category x device_type, plus each user's impressions in the same hour and day of
        the scored batch; a :class:`~ctr_lab.features.HashedFeatureVocabulary` before the
        hasher records which level went to which index, so
        :func:`ctr_lab.evaluate.top_coefficients` can name the weights of a (reloaded) model.
        ``maxIter=60``, ``tol=1e-6``, ``standardization=False``, rows stacked in blocks of
        4 MB (``maxBlockSizeInMB``; Spark's default is 1 MB) and,
        unless ``regParam`` is given, ``regParam = RECOMMENDED_PRIOR_ROWS / training rows``
        (set when it is fitted through this module, so the prior on each weight does not
        tighten as the data grow).

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
        ``minCount`` / ``numFeatures`` where the pipeline uses them, and ``extra_features``:
        columns of one's own, name -> Spark SQL expression over the canonical columns and those
        :class:`RowFeatures` adds, each used as one more categorical column (as text). They are
        computed by a ``SQLTransformer`` saved in the model, so a reloaded model computes them
        too.

    Examples
    --------
    >>> pipeline = build_pipeline("recommended", regParam=1e-4, numFeatures=1 << 18)
    >>> type(pipeline.getStages()[-1]).__name__
    'LogisticRegression'
    """
    check_settings(name, settings)
    features, lr = PIPELINES[name](settings)
    w = float(settings.get("class_weight") or 1.0)
    stages = [*features, lr]
    if w != 1.0:
        threshold = float(settings.get("threshold", 0.5))
        # LR's own threshold applies to the weighted probability: the recalibrator re-decides.
        stages = [
            *features,
            ClassWeighter(positiveWeight=w),
            lr,
            ProbabilityRecalibrator(positiveWeight=w, threshold=threshold),
        ]
    if settings.get("extra_features"):
        _refuse_taken_names(name, settings["extra_features"], stages)
    return Pipeline(stages=stages)


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


def fit_featurized(
    pipeline: Pipeline, train_df: DataFrame, timings: Optional[Dict[str, float]] = None
) -> PipelineModel:
    """Fit ``pipeline`` with its features computed once and cached for the LR iterations.

    ``Pipeline.fit`` would compute the joins and windows of the feature stages once per
    estimator that follows them, then hand the LR an uncached plan that every L-BFGS pass
    recomputes; here the features are computed once, cached (only the columns the LR reads),
    the LR fitted, and the cache released.

    Parameters
    ----------
    timings
        A dict that, when given, receives the wall seconds of ``featurize`` (fitting the
        feature stages and computing their cached output) and ``fit`` (the LR alone).

    Examples
    --------
    >>> from pyspark.ml import Pipeline
    >>> from pyspark.ml.classification import LogisticRegression
    >>> from pyspark.ml.feature import VectorAssembler
    >>> df = spark.createDataFrame(
    ...     [(float(x), y) for x, y in enumerate([0, 0, 1, 0, 1, 1])], ["x", "label"]
    ... )
    >>> pipeline = Pipeline(
    ...     stages=[VectorAssembler(inputCols=["x"], outputCol="features"), LogisticRegression()]
    ... )
    >>> model = fit_featurized(pipeline, df)
    >>> [type(stage).__name__ for stage in model.stages]
    ['VectorAssembler', 'LogisticRegressionModel']
    >>> lr_model_of(model).coefficients[0] > 0
    True
    """
    before, lr, after = _split_stages(pipeline.getStages())
    cols = ["features", "label"] + ([lr.getWeightCol()] if lr.isSet(lr.weightCol) else [])
    started = time.perf_counter()
    feature_model, features_df, rows = _fit_features(before, train_df, cols)
    featurized = time.perf_counter()
    try:
        lr_model = _scaled_lr(lr, rows).fit(features_df)
    finally:
        features_df.unpersist()
    if timings is not None:
        timings["featurize"] = featurized - started
        timings["fit"] = time.perf_counter() - featurized
    return PipelineModel(stages=[*feature_model.stages, lr_model, *after])
