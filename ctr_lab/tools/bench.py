"""``ctr-lab bench``: ctr_lab against the course pipeline, scikit-learn and Vowpal Wabbit.

One synthetic data set per size (with the generator's true click probabilities), one time split
(the last calendar day is the test set), and every peer on the same rows:

``recommended``
    ctr_lab's ``recommended`` pipeline on local Spark (hashed features).
``course_ctr04``
    The course's own CTR_04 pipeline, replicated as the course wrote it (benchmark only, it is
    not part of :mod:`ctr_lab.train`): CSV read with ``inferSchema``, a Python UDF mapping
    C20's ``-1`` to 0, StringIndexer + OneHotEncoder of the CTR_03 columns, OneHotEncoder of the
    *raw* integer codes C1, C14-C21, numeric month/day/hour, a default ``LogisticRegression``.
``course_baseline``, ``course_improved``
    ctr_lab's own versions of the course's CTR_03 and CTR_04/05 pipelines.
``onehot``
    The ``recommended`` features with StringIndexer + OneHotEncoder in place of its hasher.
``sklearn_lr``, ``sklearn_sgd``
    scikit-learn ``FeatureHasher`` (2^22) + ``LogisticRegression`` (lbfgs) or
    ``SGDClassifier`` (log loss) on the 21 raw columns plus hour of day and day of week.
``vw``
    Vowpal Wabbit (the ``vowpalwabbit`` package), logistic loss, 2^22 hashed features, the
    same columns.
``scan``
    A floor: a Spark CSV scan that parses every column.

The Bayes-optimal log loss of the test rows (from the true probabilities) is the other floor.

Each peer runs in a fresh Python process, so its wall time includes start-up (imports, the
JVM) and its peak memory is its own: the resident set size (RSS) of the process and all its
children (the Spark driver JVM included), summed and sampled every 0.1 s with psutil.
Stages are timed inside the process: ``start`` (imports, Spark session), ``load``,
``featurize``, ``fit`` and ``score``. Test log loss and ROC AUC are computed by the same numpy
code for every peer from the test rows' labels and predicted probabilities.

Examples
--------
>>> from ctr_lab.tools.bench import parse_rows
>>> parse_rows(["100k,300k", "1M"])
[100000, 300000, 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager, suppress
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ctr_lab import schema as S
from ctr_lab.errors import CtrLabError
from ctr_lab.tools.arguments import positive_float

__all__ = [
    "DEFAULT_ROWS",
    "PEERS",
    "add_scores",
    "markdown_report",
    "parse_rows",
    "prepare_data",
    "run_bench",
    "run_peer",
    "score_predictions",
]

#: Peers in table order: name -> what it is.
PEERS: Dict[str, str] = {
    "recommended": "ctr_lab `recommended` (hashed features + LR), Spark",
    "course_ctr04": "course CTR_04 as written (inferSchema, UDF, one-hot of raw codes), Spark",
    "course_baseline": "ctr_lab `course_baseline` (CTR_03 columns), Spark",
    "course_improved": "ctr_lab `course_improved` (CTR_04/05 done right), Spark",
    "onehot": "`recommended` features, StringIndexer + OneHotEncoder instead of hashing, Spark",
    "sklearn_lr": "scikit-learn FeatureHasher 2^22 + LogisticRegression (lbfgs)",
    "sklearn_sgd": "scikit-learn FeatureHasher 2^22 + SGDClassifier (log loss)",
    "vw": "Vowpal Wabbit, logistic loss, 2^22 hashed features",
    "scan": "floor: Spark CSV scan parsing every column",
}
#: The sizes ``make bench`` runs.
DEFAULT_ROWS = (100_000, 300_000, 1_000_000)
#: Settings the ``recommended`` and ``onehot`` peers accept beyond build_pipeline's own.
BENCH_SETTINGS = ("aggregationDepth", "maxBlockSizeInMB", "partitions", "staging", "vw_passes")
#: The kinds of the bench's own numeric settings (``staging`` is one of :data:`STAGINGS`).
_BENCH_KINDS = {
    "aggregationDepth": "a whole number",
    "maxBlockSizeInMB": "a number",
    "partitions": "a whole number",
    "vw_passes": "a whole number",
}
#: How ``--set staging=`` keeps the rows between load and fit.
STAGINGS = ("none", "cache", "parquet")
#: Stages timed inside each peer's process, in order.
STAGES = ("start", "load", "featurize", "fit", "score")
#: Every field of a result, in order (the JSON of each peer has all of them).
RESULT_FIELDS = (
    "peer",
    "rows",
    "status",
    "note",
    "stages",
    "total_seconds",
    "cpu_seconds",
    "rows_per_second",
    "peak_rss_mib",
    "iterations",
    "train_rows",
    "test_rows",
    "log_loss",
    "log_loss_vs_bayes_pct",
    "auc",
    "settings",
    "predictions",
    "profile",
)
MEMORY_METHOD = (
    "peak resident set size (RSS) of the peer's process and all its children (the Spark "
    "driver JVM included), summed, sampled every 0.1 s with psutil; CPU s is their user + "
    "system CPU time, from the same samples"
)
_RESULT_MARK = "CTR_LAB_BENCH_RESULT "
#: Hashed feature bits of the Python peers (scikit-learn's FeatureHasher, VW's ``-b``).
_HASH_BITS = 22
#: The course's LogisticRegression iterations: Spark's default ``maxIter``, which CTR_04 kept.
_CTR04_MAX_ITER = 100
#: The raw columns the scikit-learn and VW peers use (plus hour of day and day of week).
_RAW_FEATURES = S.FEATURE_COLUMNS
#: Spark peers: their results carry the Spark version.
_SPARK_PEERS = ("recommended", "course_ctr04", "course_baseline", "course_improved", "onehot")


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------


def parse_rows(values: Sequence[str]) -> List[int]:
    """Row counts from ``--rows`` values: repeatable, comma lists, ``k``/``M`` suffixes.

    Examples
    --------
    >>> parse_rows(["5000", "2.5M"])
    [5000, 2500000]
    """
    out: List[int] = []
    for value in values:
        for part in str(value).replace("_", "").split(","):
            text = part.strip()
            if not text:
                continue
            scale = 1
            if text[-1] in "kK":
                scale, text = 1_000, text[:-1]
            elif text[-1] in "mM":
                scale, text = 1_000_000, text[:-1]
            try:
                rows = round(float(text) * scale)
            except ValueError:
                rows = 0
            if rows <= 0:
                raise CtrLabError(f"--rows {part!r} is not a positive row count. Fix: e.g. 300k")
            out.append(rows)
    return out


def check_settings(settings: Dict[str, Any]) -> None:
    """Refuse, before any data is made, a setting the peers lack or a value they cannot take.

    Examples
    --------
    >>> check_settings({"maxIter": 20, "staging": "cache", "vw_passes": 2})
    >>> check_settings({"foo": 1})
    Traceback (most recent call last):
    ...
    ctr_lab.errors.CtrLabError: --set: unknown setting(s) ['foo']. Fix: use [...]
    """
    from ctr_lab.train.pipelines import check_settings as check_pipeline_settings

    staging = settings.get("staging", "none")
    if staging not in STAGINGS:
        raise CtrLabError(f"--set staging={staging}. Fix: {', '.join(STAGINGS)}")
    others = {k: v for k, v in settings.items() if k != "staging"}
    check_pipeline_settings("recommended", others, who="--set", more=_BENCH_KINDS)


def _parse_settings(items: Sequence[str]) -> Dict[str, Any]:
    settings: Dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CtrLabError(f"--set {item!r}: expected KEY=VALUE. Fix: e.g. --set maxIter=20")
        value: Any = text.strip()
        low = value.lower()
        if low in ("true", "false"):
            value = low == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(value)
                    break
                except ValueError:
                    pass
        settings[key.strip()] = value
    return settings


def _write_predictions(y, p, path: str) -> str:
    """Write test labels and predicted probabilities to a Parquet file; return its path."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "label": np.asarray(y).astype(np.int8),
            "p": np.asarray(p, dtype=np.float64),
        }
    )
    pq.write_table(table, path)
    return path


def score_predictions(path: str) -> Dict[str, float]:
    """Test log loss and exact ROC AUC of a predictions file, by :mod:`ctr_lab.evaluate`.

    Every peer, Spark or not, and the generator's true probabilities are scored here, by the
    lab's one log loss and one AUC, in the parent's Spark session after the peers have run.
    """
    from ctr_lab.evaluate import _defined_roc_auc, metrics

    df = _spark().read.parquet("file://" + os.path.abspath(path)).cache()  # read twice below
    try:
        found = metrics(df, prob_col="p")  # the log loss and the AUC in one query
    finally:
        df.unpersist()
    return {"log_loss": found["log_loss"], "auc": _defined_roc_auc(found["roc_auc"], "label")}


def add_scores(result: Dict[str, Any], bayes_log_loss: Optional[float]) -> Dict[str, Any]:
    """Fill ``log_loss``, ``auc`` and ``log_loss_vs_bayes_pct`` of a peer's result."""
    if result.get("status") != "ok" or not result.get("predictions"):
        return result
    result.update(score_predictions(result["predictions"]))
    if bayes_log_loss:
        result["log_loss_vs_bayes_pct"] = 100.0 * (result["log_loss"] / bayes_log_loss - 1.0)
    return result


class _Timer:
    """Wall seconds per named stage; with ``profile``, each stage's Spark jobs in its job group.

    A job group set as a stage begins goes into the ``Properties`` of every Spark job and stage
    it submits, so :mod:`ctr_lab.tools.bench_profile` can add the event log's task metrics up
    per stage of the pipeline. ``parts`` holds the wall seconds of each job group.
    """

    def __init__(self, profile: bool = False) -> None:
        self.stages: Dict[str, Optional[float]] = {s: None for s in STAGES}
        self.profile = profile
        self.parts: Dict[str, float] = {}
        self._group: Optional[str] = None

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            with self.group(stage):
                yield
        finally:
            self.stages[stage] = (self.stages.get(stage) or 0.0) + time.perf_counter() - t0

    @contextmanager
    def group(self, name: str, within: Optional[str] = None) -> Iterator[None]:
        """Run the block's Spark jobs in job group ``name`` (when profiling).

        With ``within``, only while the current group is ``within`` (a feature stage's
        transform called again at scoring time stays in the ``score`` group).
        """
        if not self.profile or (within is not None and self._group != within):
            yield
            return
        previous, t0 = self._group, time.perf_counter()
        self._set_group(name)
        try:
            yield
        finally:
            self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t0
            self._set_group(previous)

    def _set_group(self, name: Optional[str]) -> None:
        self._group = name
        from pyspark import SparkContext

        sc = SparkContext._active_spark_context
        if sc is not None:  # no session yet (the start stage), or a peer without Spark
            sc.setLocalProperty("spark.jobGroup.id", name)  # type: ignore[arg-type]
            sc.setLocalProperty("spark.job.description", name)  # type: ignore[arg-type]

    def profiled(self, stages: Sequence[Any]) -> List[Any]:
        """``stages`` whose fit (estimators) or transform runs in a job group of its own.

        Each stage is copied into a subclass of its own class (same params, same name) whose
        ``_fit``/``_transform`` runs in group ``featurize/<i> <class>`` while featurizing, or
        ``fit`` for the LogisticRegression. Spark plans lazily: a group gets the jobs its
        stage starts, which compute every stage before it that is not cached yet.
        """
        if not self.profile:
            return list(stages)
        from pyspark.ml import Estimator
        from pyspark.ml.classification import LogisticRegression

        timer, out = self, []
        for i, stage in enumerate(stages, 1):
            base = type(stage)
            is_lr = isinstance(stage, LogisticRegression)
            name = "fit" if is_lr else f"featurize/{i} {base.__name__}"
            method = "_fit" if isinstance(stage, Estimator) else "_transform"

            def run(self, dataset, _base=base, _method=method, _name=name):
                with timer.group(_name, within="featurize"):
                    return getattr(_base, _method)(self, dataset)

            copy = stage.copy()
            copy.__class__ = type(base.__name__, (base,), {method: run})
            out.append(copy)
        return out


def machine() -> Dict[str, Any]:
    """The facts about this machine a reader needs to compare numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    from ctr_lab.session import local_settings, memory_limit_mb

    memory_mb = memory_limit_mb()  # the machine's, or its container's limit
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": None if memory_mb is None else round(memory_mb / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "spark_master": os.environ.get("CTR_LAB_MASTER", "local[*]"),
        "driver_memory": local_settings()["spark.driver.memory"],
    }


def _load_average() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


# ----------------------------------------------------------------------------------------------
# Data and the split
# ----------------------------------------------------------------------------------------------


def _read_columns(path: str, cols: Sequence[str]):
    """Columns of a CSV file as a pyarrow Table, every column as text."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    convert = pacsv.ConvertOptions(
        include_columns=list(cols), column_types={c: pa.string() for c in cols}
    )
    return pacsv.read_csv(path, convert_options=convert)


def prepare_data(rows: int, seed: int, data_dir: str) -> Dict[str, Any]:
    """Generate (or reuse) a data set with its truth, and fix the time split for every peer.

    The test set is the last calendar day present (as :func:`ctr_lab.train.time_split` with
    ``test_days=1``): rows whose ``hour`` (YYMMDDHH, UTC) is at or after ``test_from_hour``.

    Returns
    -------
    dict
        ``data``, ``truth``, ``rows``, ``seed``, ``test_from_hour``, ``train_rows``,
        ``test_rows``, ``bayes_predictions`` (a Parquet file of the test rows' labels and true
        probabilities, for :func:`score_predictions`), ``generate_seconds`` (None when reused).
    """
    import numpy as np

    from ctr_lab.tools.synth import write_dataset

    os.makedirs(data_dir, exist_ok=True)
    data = os.path.abspath(os.path.join(data_dir, f"avazu_synth_{rows}_seed{seed}.csv"))
    truth = os.path.abspath(os.path.join(data_dir, f"avazu_synth_{rows}_seed{seed}_truth.csv"))
    generated: Optional[float] = None
    if not (os.path.exists(data) and os.path.exists(truth)):
        report = write_dataset(data, rows=rows, seed=seed, truth_path=truth)
        generated = report.seconds
    table = _read_columns(data, ["click", "hour"])
    hours = np.asarray(table.column("hour").to_numpy(zero_copy_only=False)).astype(np.int64)
    labels = np.asarray(table.column("click").to_numpy(zero_copy_only=False)).astype(np.int8)
    p_true = np.asarray(
        _read_columns(truth, ["p_click"]).column("p_click").to_numpy(zero_copy_only=False)
    ).astype(np.float64)
    if p_true.size != hours.size:
        raise CtrLabError(
            f"{truth}: {p_true.size:,} truth rows for {hours.size:,} data rows. "
            f"Fix: delete {data} and {truth} so they are generated again"
        )
    test_from_hour = int(hours.max() // 100 * 100)
    is_test = hours >= test_from_hour
    return {
        "data": data,
        "truth": truth,
        "rows": int(hours.size),
        "seed": seed,
        "test_from_hour": test_from_hour,
        "train_rows": int((~is_test).sum()),
        "test_rows": int(is_test.sum()),
        "bayes_predictions": _write_predictions(
            labels[is_test], p_true[is_test], os.path.splitext(truth)[0] + "_test.parquet"
        ),
        "generate_seconds": generated,
    }


# ----------------------------------------------------------------------------------------------
# Peers (each runs inside its own process, or in-process from tests)
# ----------------------------------------------------------------------------------------------


class _Unavailable(Exception):
    """A peer's package is not installed."""


def _need(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise _Unavailable(f"{package} not installed (pip install {package})") from None


def _spark(event_log_dir: Optional[str] = None):
    """The session (started if none is active); with ``event_log_dir``, one that logs events."""
    from ctr_lab.session import get_spark

    config = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    if event_log_dir:
        config.update(_event_log_settings(event_log_dir))
    return get_spark("ctr-lab-bench", config)


def _scoring_spark(event_log_dir: Optional[str] = None):
    """The parent's scoring session: a local one, whatever master ``CTR_LAB_MASTER`` names.

    The peers run on that master (a standalone cluster, say), each in its own process. The
    scoring is this process's bookkeeping and lives from one size to the next, so on a cluster
    it would hold the cores the next size's peers wait for.
    """
    master = os.environ.pop("CTR_LAB_MASTER", None)
    try:
        return _spark(event_log_dir)
    finally:
        if master is not None:
            os.environ["CTR_LAB_MASTER"] = master


def _event_log_settings(event_log_dir: str) -> Dict[str, str]:
    """Spark settings that write this application's event log into a new, empty folder."""
    import shutil

    shutil.rmtree(event_log_dir, ignore_errors=True)  # one log per folder: this run's
    os.makedirs(event_log_dir)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "file://" + os.path.abspath(event_log_dir),
        # Uncompressed, so that the log reads without a codec (Spark 4 compresses by default).
        "spark.eventLog.compress": "false",
    }


def _stop_spark() -> None:
    """Stop the parent's scoring session, if one was started."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def _collect_scores(scored_df) -> Tuple[Any, Any]:
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    pdf = scored_df.select(
        F.col("label").cast("int").alias("label"),
        vector_to_array(F.col("probability"))[1].alias("p"),
    ).toPandas()
    return pdf["label"].to_numpy(), pdf["p"].to_numpy()


def _staged(df, settings: Dict[str, Any], work_dir: str):
    """The loaded rows as the pipelines will read them: lazy (the default), cached or staged.

    ``load(cache_dir=)`` already keeps the rows as Parquet, so the pipelines read Parquet
    without staging; persisting them costs more than it saves (BENCHMARKS.md, "Tuning
    experiments": 165-176 s against 189-195 s at 1M).
    """
    from pyspark import StorageLevel

    partitions = settings.get("partitions")
    if partitions:
        df = df.repartition(int(partitions))
    staging = str(settings.get("staging", "none"))  # one of STAGINGS (check_settings)
    if staging == "cache":
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        df.count()
    elif staging == "parquet":
        path = os.path.join(work_dir, f"staged_{os.getpid()}.parquet")
        df.write.mode("overwrite").parquet("file://" + path)
        df = df.sparkSession.read.parquet("file://" + path)
    return df


def _split_at(pipeline_stages: Sequence[Any]) -> int:
    from pyspark.ml.classification import LogisticRegression

    at = [i for i, s in enumerate(pipeline_stages) if isinstance(s, LogisticRegression)]
    if len(at) != 1:
        raise CtrLabError("bench: the pipeline must hold exactly one LogisticRegression")
    return at[0]


def _fit_and_score(
    before: List[Any], lr, after: List[Any], train_df, test_df, timer: _Timer, cache: bool
) -> Tuple[Any, Any, Optional[int]]:
    """Fit the feature stages, then the LR on their output, then score the test rows."""
    from pyspark import StorageLevel
    from pyspark.ml import Pipeline, PipelineModel

    with timer("featurize"):
        feature_model = Pipeline(stages=timer.profiled(before)).fit(train_df)
        cols = ["features", "label"] + ([lr.getWeightCol()] if lr.isSet(lr.weightCol) else [])
        features_df = feature_model.transform(train_df).select(*cols)
        if cache:
            features_df = features_df.persist(StorageLevel.MEMORY_AND_DISK)
            features_df.count()
    with timer("fit"):
        lr_model = lr.fit(features_df)
    if cache:
        features_df.unpersist()
    iterations = lr_model.summary.totalIterations if lr_model.hasSummary else None
    with timer("score"):
        model = PipelineModel(stages=[*feature_model.stages, lr_model, *after])
        y, p = _collect_scores(model.transform(test_df))
    return y, p, iterations


def _lr_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in BENCH_SETTINGS}


def _ctr_lab_pipeline_stages(name: str, settings: Dict[str, Any]) -> List[Any]:
    from ctr_lab.train import build_pipeline

    stages: List[Any] = list(build_pipeline(name, **_lr_settings(settings)).getStages())
    lr = stages[_split_at(stages)]
    if "aggregationDepth" in settings:
        lr.setAggregationDepth(int(settings["aggregationDepth"]))
    if "maxBlockSizeInMB" in settings:
        lr.setMaxBlockSizeInMB(float(settings["maxBlockSizeInMB"]))
    return stages


def _load_split(spec: Dict[str, Any], timer: _Timer, settings: Dict[str, Any]):
    from ctr_lab.data import load
    from ctr_lab.train import time_split

    with timer("load"):
        # As the notebooks load (``cache_dir=DATA_CACHE``): the text is parsed and validated
        # once, the rows written as Parquet in the same pass; later passes read the Parquet.
        # A folder of this process's own, so the timed load is a first one.
        kept = os.path.join(spec["work_dir"], f"kept_{os.getpid()}")
        loaded = load(spec["data"], _spark(), cache_dir=kept)
        df = _staged(loaded.df, settings, spec["work_dir"])
        train_df, test_df = time_split(df, test_days=1)
    return train_df, test_df


def _fit_featurized_and_score(stages: List[Any], train_df, test_df, timer: _Timer):
    """ctr_lab's own ``fit_featurized`` (features cached once, its LR settings), then scoring.

    ``featurize`` is the time of ``fit_featurized`` outside the LR fit, ``fit`` the LR fit.
    Returns the labels, the scores, the LR's iterations and the settings it was fitted with
    (``regParam``, ``aggregationDepth``, ``maxBlockSizeInMB``), read from the fitted model.
    """
    from pyspark.ml import Pipeline

    from ctr_lab.train import fit_featurized, lr_model_of

    timings: Dict[str, float] = {}
    with timer.group("featurize"):  # its LR fit runs in group ``fit`` (Timer.profiled)
        model = fit_featurized(Pipeline(stages=timer.profiled(stages)), train_df, timings=timings)
    timer.stages.update(timings)
    lr_model = lr_model_of(model)
    iterations = lr_model.summary.totalIterations if lr_model.hasSummary else None
    with timer("score"):
        y, p = _collect_scores(model.transform(test_df))
    fitted = {
        "regParam": float(lr_model.getRegParam()),
        "aggregationDepth": int(lr_model.getAggregationDepth()),
        "maxBlockSizeInMB": float(lr_model.getMaxBlockSizeInMB()),
    }
    return y, p, iterations, fitted


def _peer_ctr_lab(name: str, spec: Dict[str, Any], timer: _Timer) -> Dict[str, Any]:
    settings = dict(spec.get("settings") or {}) if name == "recommended" else {}
    train_df, test_df = _load_split(spec, timer, settings)
    stages = _ctr_lab_pipeline_stages(name, settings)
    y, p, iterations, fitted = _fit_featurized_and_score(stages, train_df, test_df, timer)
    return {"y": y, "p": p, "iterations": iterations, "settings": {**settings, **fitted}}


def _peer_onehot(spec: Dict[str, Any], timer: _Timer) -> Dict[str, Any]:
    """The recommended pipeline with its hasher replaced by StringIndexer + OneHotEncoder."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    from ctr_lab.hashing import SqlFeatureHasher

    settings = dict(spec.get("settings") or {})
    train_df, test_df = _load_split(spec, timer, settings)
    # A stage that only names the hashed features has nothing to do without the hasher.
    stages = [
        s
        for s in _ctr_lab_pipeline_stages("recommended", settings)
        if type(s).__name__ != "HashedFeatureVocabulary"
    ]
    at = [i for i, s in enumerate(stages) if isinstance(s, SqlFeatureHasher)]
    if len(at) != 1:
        raise CtrLabError("bench onehot: `recommended` no longer has one SqlFeatureHasher stage")
    h = at[0]
    hasher = stages[h]
    inputs = list(hasher.getInputCols())
    with timer("featurize"):
        # Column types after the stages before the hasher decide what the hasher did with
        # each: strings, booleans and categoricalCols are categories, other numbers are values.
        one_row = train_df.limit(1)
        kinds = hasher.categorical(Pipeline(stages=stages[:h]).fit(one_row).transform(one_row))
    cats = [c for c in inputs if kinds[c]]
    nums = [c for c in inputs if not kinds[c]]
    indexed = [f"{c}__idx" for c in cats]
    encoded = [f"{c}__ohe" for c in cats]
    replacement = [
        StringIndexer(inputCols=cats, outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        VectorAssembler(
            inputCols=[*encoded, *nums], outputCol=hasher.getOutputCol(), handleInvalid="keep"
        ),
    ]
    stages = [*stages[:h], *replacement, *stages[h + 1 :]]
    schema_seconds = timer.stages["featurize"] or 0.0
    y, p, iterations, fitted = _fit_featurized_and_score(stages, train_df, test_df, timer)
    timer.stages["featurize"] = (timer.stages["featurize"] or 0.0) + schema_seconds
    return {"y": y, "p": p, "iterations": iterations, "settings": {**settings, **fitted}}


#: The integer codes CTR_04 adds and one-hot encodes as they are (C20 after its UDF).
_CTR04_RAW_CODES = ["C1", "C14", "C15", "C16", "C17", "C18", "C19", "C20_fixed", "C21"]


def _peer_course_ctr04(spec: Dict[str, Any], timer: _Timer) -> Dict[str, Any]:
    """The course's CTR_04 model, as the course wrote it, on the raw file format.

    Departures, each needed to score a later day at all: ``handleInvalid="keep"`` on the
    indexers and encoders (values first seen on the test day would otherwise stop the job), and
    month/day/hour derived from the raw ``hour`` (the course's file had them as columns).
    """
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType

    spark = _spark()
    with timer("load"):
        # The course read its CSV with inferSchema=True (a full pass to guess types).
        df = spark.read.csv("file://" + spec["data"], header=True, inferSchema=True)

        @F.udf(returnType=IntegerType())
        def fix_c20(value):  # the course's UDF: "LR cannot take negative values"
            return 0 if value == -1 else value

        df = df.withColumns(
            {
                "month": (F.floor(F.col("hour") / 10000) % 100).cast("int"),
                "day": (F.floor(F.col("hour") / 100) % 100).cast("int"),
                "hour_of_day": (F.col("hour") % 100).cast("int"),
                "C20_fixed": fix_c20(F.col("C20")),
                "label": F.col("click").cast("int"),
            }
        )
        is_test = F.col("hour") >= F.lit(int(spec["test_from_hour"]))
        train_df, test_df = df.where(~is_test), df.where(is_test)
    # CTR_03's categoricals, the same columns as ``course_baseline``.
    from ctr_lab.train import COURSE_CATEGORICALS as _CTR03_CATEGORICALS

    indexed = [f"{c}_idx" for c in _CTR03_CATEGORICALS]
    encoded = [f"{c}_vec" for c in _CTR03_CATEGORICALS]
    raw_encoded = [f"{c}_vec" for c in _CTR04_RAW_CODES]
    before = [
        StringIndexer(inputCols=_CTR03_CATEGORICALS, outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        OneHotEncoder(inputCols=_CTR04_RAW_CODES, outputCols=raw_encoded, handleInvalid="keep"),
        VectorAssembler(
            inputCols=["month", "day", "hour_of_day", *encoded, *raw_encoded],
            outputCol="features",
        ),
    ]
    lr = LogisticRegression(featuresCol="features", labelCol="label", maxIter=_CTR04_MAX_ITER)
    # Nothing cached, as in the course: LogisticRegression persists its own input.
    y, p, iterations = _fit_and_score(before, lr, [], train_df, test_df, timer, cache=False)
    return {"y": y, "p": p, "iterations": iterations, "settings": {}}


def _peer_scan(spec: Dict[str, Any], timer: _Timer) -> Dict[str, Any]:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = _spark()
    fields = []
    for name in S.RAW_COLUMNS:
        if name in ("id",) or name in S.HEX_COLUMNS:
            kind: Any = T.StringType()
        else:
            kind = T.IntegerType()
        fields.append(T.StructField(name, kind))
    with timer("load"):
        df = spark.read.schema(T.StructType(fields)).option("header", True)
        df = df.csv("file://" + spec["data"])
        # A hash of every column makes the parser convert every field of every row.
        df.agg(F.count(F.lit(1)), F.sum(F.xxhash64(*df.columns) % 1024)).first()
    return {}


def _raw_table(spec: Dict[str, Any], timer: _Timer):
    """The raw columns as Arrow text columns, with hour of day / day of week and the split."""
    import numpy as np
    import pyarrow as pa

    with timer("load"):
        table = _read_columns(spec["data"], ["click", "hour", *_RAW_FEATURES])
        hours = table.column("hour").to_numpy(zero_copy_only=False).astype(np.int64)
        y = table.column("click").to_numpy(zero_copy_only=False).astype(np.int8)
        day = hours // 100 % 100
        hod = hours % 100
        dow = (day - 20) % 7  # 2014-10-20 was a Monday
        table = table.append_column("hour_of_day", pa.array(hod.astype(str)))
        table = table.append_column("day_of_week", pa.array(dow.astype(str)))
        is_test = hours >= int(spec["test_from_hour"])
    return table, y, is_test


_HASHED_COLS = (*_RAW_FEATURES, "hour_of_day", "day_of_week")


def _hashed_matrix(table, n_features: int):
    """scikit-learn FeatureHasher of ``column=value`` tokens, one token per column and row.

    Each column's distinct values are hashed once (FeatureHasher on the dictionary) and the
    rows take their value's column index and sign: the same matrix as hashing every row's
    tokens, computed in a fraction of the time.
    """
    import numpy as np
    import pyarrow.compute as pc
    from scipy import sparse
    from sklearn.feature_extraction import FeatureHasher

    hasher = FeatureHasher(n_features=n_features, input_type="string")
    n = table.num_rows
    indices = np.empty((n, len(_HASHED_COLS)), dtype=np.int32)
    signs = np.empty((n, len(_HASHED_COLS)), dtype=np.float64)
    for j, name in enumerate(_HASHED_COLS):
        encoded = pc.dictionary_encode(table.column(name)).combine_chunks()
        levels = encoded.dictionary.to_pylist()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        per_level = hasher.transform([[f"{name}={v}"] for v in levels]).tocsr()
        per_level.sort_indices()
        level_index = per_level.indices.astype(np.int32)
        level_sign = per_level.data
        indices[:, j] = level_index[codes]
        signs[:, j] = level_sign[codes]
    indptr = np.arange(0, n * len(_HASHED_COLS) + 1, len(_HASHED_COLS), dtype=np.int64)
    matrix = sparse.csr_matrix(
        (signs.ravel(), indices.ravel(), indptr), shape=(n, n_features), dtype=np.float64
    )
    matrix.sum_duplicates()
    return matrix


def _peer_sklearn(kind: str, spec: Dict[str, Any], timer: _Timer) -> Dict[str, Any]:
    _need("sklearn", "scikit-learn")
    _need("scipy", "scipy")
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    table, y, is_test = _raw_table(spec, timer)
    with timer("featurize"):
        x = _hashed_matrix(table, 1 << _HASH_BITS)
        del table
        x_train, y_train = x[~is_test], y[~is_test]
        x_test, y_test = x[is_test], y[is_test]
    n_train = x_train.shape[0]
    reg = 1e-4  # per-row L2 strength, as Spark's regParam (mean loss + reg/2 ||w||^2)
    model: Any
    if kind == "lr":
        model = LogisticRegression(solver="lbfgs", C=1.0 / (reg * n_train), max_iter=100, tol=1e-6)
        settings: Dict[str, Any] = {"solver": "lbfgs", "C": "1/(1e-4 n_train)", "max_iter": 100}
    else:
        model = SGDClassifier(
            loss="log_loss",
            alpha=1e-5,
            learning_rate="adaptive",
            eta0=0.05,
            max_iter=10,
            tol=1e-4,
            random_state=0,
        )
        settings = {"loss": "log_loss", "alpha": 1e-5, "learning_rate": "adaptive", "eta0": 0.05}
    settings["n_features"] = x.shape[1]
    with timer("fit"):
        model.fit(x_train, y_train)
    iterations = int(max(getattr(model, "n_iter_", [0]) if kind == "lr" else [model.n_iter_]))
    with timer("score"):
        p = model.predict_proba(x_test)[:, 1]
    return {"y": y_test, "p": p, "iterations": iterations, "settings": settings}


def _vw_lines(table, y) -> Any:
    """Vowpal Wabbit text lines: ``label |f col=value ...`` (labels -1/1)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    labels = pa.array(np.where(y == 1, "1 |f", "-1 |f"))
    tokens = [pc.binary_join_element_wise(pa.scalar(c), table.column(c), "=") for c in _HASHED_COLS]
    return pc.binary_join_element_wise(labels, *tokens, " ")


def _write_lines(lines, path: str) -> None:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table({"line": lines}), path, write_options=options)


def _peer_vw(spec: Dict[str, Any], timer: _Timer) -> Dict[str, Any]:
    import numpy as np

    vw_module = _need("vowpalwabbit", "vowpalwabbit")
    passes = int((spec.get("settings") or {}).get("vw_passes", 1))
    table, y, is_test = _raw_table(spec, timer)
    work = os.path.join(spec["work_dir"], f"vw_{os.getpid()}")
    os.makedirs(work, exist_ok=True)
    train_txt, test_txt = os.path.join(work, "train.vw"), os.path.join(work, "test.vw")
    model_path, pred_path = os.path.join(work, "model.vw"), os.path.join(work, "pred.txt")
    with timer("featurize"):
        lines = _vw_lines(table, y)
        mask = np.asarray(is_test)
        _write_lines(lines.filter(~mask), train_txt)
        _write_lines(lines.filter(mask), test_txt)
        del lines, table
    args = f"--loss_function logistic -b {_HASH_BITS} --quiet"
    if passes > 1:
        args += f" --passes {passes} -c -k --holdout_off"
    with timer("fit"):
        vw = vw_module.Workspace(f"-d {train_txt} -f {model_path} {args}")
        vw.run_parser()
        vw.finish()
    with timer("score"):
        vw = vw_module.Workspace(
            f"-t -i {model_path} -d {test_txt} -p {pred_path} --link logistic --quiet"
        )
        vw.run_parser()
        vw.finish()
        p = np.loadtxt(pred_path, dtype=np.float64, ndmin=1)
    settings = {"args": args, "passes": passes}
    return {"y": y[is_test], "p": p, "iterations": passes, "settings": settings}


def _peer_function(peer: str) -> Callable[[Dict[str, Any], _Timer], Dict[str, Any]]:
    if peer in ("recommended", "course_baseline", "course_improved"):
        return lambda spec, timer: _peer_ctr_lab(peer, spec, timer)
    table: Dict[str, Callable[[Dict[str, Any], _Timer], Dict[str, Any]]] = {
        "onehot": _peer_onehot,
        "course_ctr04": _peer_course_ctr04,
        "scan": _peer_scan,
        "sklearn_lr": lambda spec, timer: _peer_sklearn("lr", spec, timer),
        "sklearn_sgd": lambda spec, timer: _peer_sklearn("sgd", spec, timer),
        "vw": _peer_vw,
    }
    if peer not in table:
        raise CtrLabError(f"no benchmark peer {peer!r}. Fix: use one of {', '.join(PEERS)}")
    return table[peer]


def _empty_result(peer: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    result: Dict[str, Any] = {name: None for name in RESULT_FIELDS}
    result.update(peer=peer, rows=spec.get("rows"), stages={s: None for s in STAGES})
    return result


def run_peer(peer: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run one peer in this process and return its result (without the process-level fields).

    ``spec`` is what :func:`prepare_data` returns plus ``work_dir`` and ``settings``. The
    ``start`` stage is the Spark session (Spark peers) or nothing; ``total_seconds`` and
    ``peak_rss_mib`` are filled in by the parent process (see :func:`run_bench`), and the
    metrics by :func:`add_scores` from the ``predictions`` file this writes.
    """
    result = _empty_result(peer, spec)
    event_log_dir = spec.get("event_log_dir") if peer in (*_SPARK_PEERS, "scan") else None
    timer = _Timer(profile=bool(event_log_dir))
    func = _peer_function(peer)
    try:
        if peer in _SPARK_PEERS or peer == "scan":
            with timer("start"):
                spark = _spark(event_log_dir)
            result["spark"] = spark.version
        out = func(spec, timer)
    except _Unavailable as exc:
        result.update(status="unavailable", note=str(exc))
        return result
    result["stages"] = timer.stages
    if event_log_dir:  # the event log is read once this process has stopped Spark
        result["profile"] = {"event_log_dir": event_log_dir, "wall": timer.parts}
    result["status"] = "ok"
    result["settings"] = out.get("settings")
    result["iterations"] = out.get("iterations")
    if "y" in out:
        y, p = out["y"], out["p"]
        result["test_rows"] = len(y)
        result["train_rows"] = int(spec["rows"]) - len(y)
        if len(y) != spec.get("test_rows"):
            result["status"] = "split mismatch"
            result["note"] = f"{len(y):,} test rows, the split has {spec.get('test_rows'):,}"
        name = f"predictions_{peer}_{spec['rows']}_{os.getpid()}.parquet"
        result["predictions"] = _write_predictions(y, p, os.path.join(spec["work_dir"], name))
    return result


def _child_main(argv: Sequence[str]) -> int:
    """Entry of a peer's own process: ``python -m ctr_lab.tools.bench PEER SPEC_JSON``."""
    peer, spec_json = argv[0], argv[1]
    t0 = time.perf_counter()
    spec = json.loads(spec_json)
    try:
        result = run_peer(peer, spec)
    except Exception as exc:  # reported as the peer's status; the other peers still run
        from ctr_lab.session import lost_driver

        traceback.print_exc()  # whole, into the peer's log, which the parent names
        result = _empty_result(peer, spec)
        # First: a Py4J error's text comes from the JVM, which may have just ended.
        ended = lost_driver()
        if ended is not None:  # the error was then a later, unrelated call
            note = ended.explain()
        else:
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            note = f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"
        result.update(status="failed", note=note)
    result["child_seconds"] = time.perf_counter() - t0
    print(_RESULT_MARK + json.dumps(result, default=float), flush=True)
    try:  # stop Spark cleanly where one was started
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
    except ImportError:
        pass
    return 0


# ----------------------------------------------------------------------------------------------
# Parent: one process per peer, memory sampling, the whole run
# ----------------------------------------------------------------------------------------------


class _MemorySampler:
    """Peak RSS and CPU seconds of a process and its children, sampled in a background thread.

    CPU seconds (user + system, last value seen per process) are less sensitive than wall
    time to other work on a shared machine.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.peak_bytes = 0
        self._cpu: Dict[int, float] = {}
        self.available = True
        self._stop = threading.Event()
        try:
            import psutil
        except ImportError:
            self.available = False
            self._thread: Optional[threading.Thread] = None
            return
        self._psutil = psutil
        self._pid = pid
        self._interval = interval
        self._thread = threading.Thread(target=self._run, name="ctr-lab-bench-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        psutil = self._psutil
        try:
            proc = psutil.Process(self._pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                family = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                return
            for member in family:
                with suppress(psutil.Error):
                    total += member.memory_info().rss
                    times = member.cpu_times()
                    self._cpu[member.pid] = times.user + times.system
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self._interval)

    def stop(self) -> Optional[float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak_bytes / 2**20 if self.available and self.peak_bytes else None

    @property
    def cpu_seconds(self) -> Optional[float]:
        """User + system CPU seconds of the process tree (None without psutil)."""
        return sum(self._cpu.values()) if self.available and self._cpu else None


def _profile_rows(child: Dict[str, Any], stages: Dict[str, Any]) -> Dict[str, Any]:
    """A peer's profile: its event log's totals per stage of the pipeline, with wall seconds.

    ``featurize/<i> <stage>`` rows are the feature stages' fit/transform calls (see
    ``_Timer.profiled``); ``featurize`` is then what featurizing ran outside them (e.g.
    caching the features); jobs outside every group come last.
    """
    from ctr_lab.tools import bench_profile

    groups = bench_profile.profile(child["event_log_dir"])
    wall = child.get("wall") or {}
    rows: List[Dict[str, Any]] = []

    def add(stage: str, seconds: Optional[float]) -> None:
        totals = groups.pop(stage, {m: 0 for m in bench_profile.METRICS})
        rows.append({"stage": stage, "wall_seconds": seconds, **totals})

    for stage in STAGES:
        parts = [g for g in wall if g.startswith(stage + "/")]
        for part in parts:
            add(part, wall[part])
        seconds = stages.get(stage)
        if seconds is not None and parts:
            seconds = max(seconds - sum(wall[p] for p in parts), 0.0)
        add(stage, seconds)
    for group in list(groups):
        add(group, wall.get(group))
    return {"event_log_dir": child["event_log_dir"], "stages": rows}


def _run_peer_process(peer: str, spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    if spec.get("profile_dir"):
        spec = {
            **spec,
            "event_log_dir": os.path.join(spec["profile_dir"], f"{peer}_{spec['rows']}"),
        }
    env = dict(os.environ)
    env.setdefault("CTR_LAB_SPARK_UI", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_path = os.path.join(spec["work_dir"], f"{peer}_{spec['rows']}.log")
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctr_lab.tools.bench", peer, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        sampler = _MemorySampler(proc.pid)
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
            sampler.stop()
            result = _empty_result(peer, spec)
            result.update(status="timeout", note=f"stopped after {timeout:.0f} s")
            return result
        finally:
            peak = sampler.stop()
    wall = time.perf_counter() - t0
    found = [line for line in stdout.splitlines() if line.startswith(_RESULT_MARK)]
    if not found:
        with open(log_path) as fh:
            tail = [line.strip() for line in fh if line.strip()][-1:] or ["no output"]
        result = _empty_result(peer, spec)
        result.update(status="failed", note=f"exit {proc.returncode}: {tail[0][:300]} ({log_path})")
    else:
        result = json.loads(found[-1][len(_RESULT_MARK) :])
    if result.get("status") == "failed" and log_path not in result["note"]:
        result["note"] = f"{result['note']} ({log_path})"
    if result.get("status") == "ok":
        result["total_seconds"] = wall
        result["rows_per_second"] = spec["rows"] / wall if wall > 0 else None
        result["peak_rss_mib"] = peak
        result["cpu_seconds"] = sampler.cpu_seconds
        if result.get("profile"):
            result["profile"] = _profile_rows(result["profile"], result["stages"])
    return result


def run_bench(
    rows_list: Sequence[int],
    peers: Sequence[str],
    out_dir: str,
    seed: int = 0,
    settings: Optional[Dict[str, Any]] = None,
    timeout: float = 3600.0,
    log: Callable[[str], None] = print,
    checkpoint: Optional[Callable[[Dict[str, Any]], None]] = None,
    profile: bool = False,
) -> Dict[str, Any]:
    """Run every peer on every size, each in its own process; return the whole report.

    With ``profile``, each Spark peer (and the scoring session, as stage ``evaluate``) writes
    its Spark event log under ``out_dir/profile`` and its result gets a ``profile``: one row
    per stage of its pipeline (see :mod:`ctr_lab.tools.bench_profile`).

    Returns
    -------
    dict
        ``machine``, ``memory_method``, ``started``/``finished`` (UTC), ``load_average``
        before and after, ``settings`` and ``results``: one entry per (size, peer) with
        :data:`RESULT_FIELDS`, plus one ``bayes`` entry per size (the true probabilities).
    """
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise CtrLabError(f"--peers: unknown {', '.join(unknown)}. Fix: use {', '.join(PEERS)}")
    check_settings(dict(settings or {}))
    data_dir = os.path.join(out_dir, "data")
    work_dir = os.path.abspath(os.path.join(out_dir, "work"))
    os.makedirs(work_dir, exist_ok=True)
    profile_dir = os.path.abspath(os.path.join(out_dir, "profile"))
    scoring = _Timer(profile=profile)  # job groups of the scoring session: "evaluate" rows
    scoring_log: Optional[str] = None
    report: Dict[str, Any] = {
        "machine": machine(),
        "memory_method": MEMORY_METHOD,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_before": _load_average(),
        "seed": seed,
        "settings": dict(settings or {}),
        "peers": list(peers),
        "data": [],
        "results": [],
    }
    for rows in rows_list:
        log(f"[{rows:,} rows] data: generating or reusing in {data_dir}")
        data = prepare_data(rows, seed, data_dir)
        report["data"].append(data)
        log(
            f"  train {data['train_rows']:,} rows, test {data['test_rows']:,} rows (from hour "
            f"{data['test_from_hour']})"
        )
        spec = {**data, "work_dir": work_dir, "settings": dict(settings or {})}
        if profile:
            spec["profile_dir"] = profile_dir
        results = []
        for peer in peers:
            log(f"  {peer} ...")
            result = _run_peer_process(peer, spec, timeout)
            results.append(result)
            report["results"].append(result)
            log("    " + _one_line(result))
            if checkpoint is not None:  # partial results survive an interrupted run
                checkpoint(report)
        # Scored after every peer of this size has run and exited, so no peer shares the
        # machine with the scoring session.
        if profile and scoring_log is None:
            scoring_log = os.path.join(profile_dir, "evaluate")
            _scoring_spark(scoring_log)
        else:
            _scoring_spark()  # the session of the sizes before, or a new local one
        bayes = _empty_result("bayes", data)
        bayes.update(
            status="ok",
            note="the generator's true probabilities",
            train_rows=data["train_rows"],
            test_rows=data["test_rows"],
            predictions=data["bayes_predictions"],
            log_loss_vs_bayes_pct=0.0,
            **score_predictions(data["bayes_predictions"]),
        )
        data["bayes_log_loss"], data["bayes_auc"] = bayes["log_loss"], bayes["auc"]
        log(f"  scores (ctr_lab.evaluate); Bayes-optimal test log loss {bayes['log_loss']:.4f}")
        for result in results:
            with scoring.group(f"evaluate {result['peer']} {rows}"):
                add_scores(result, bayes["log_loss"])
            if result.get("log_loss") is not None:
                log(f"    {result['peer']}: " + _one_line(result))
        report["results"].append(bayes)
        if checkpoint is not None:
            checkpoint(report)
    _stop_spark()
    if scoring_log is not None:
        _add_evaluate_rows(report["results"], scoring_log, scoring.parts)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["load_average_after"] = _load_average()
    return report


def _add_evaluate_rows(results: List[Dict[str, Any]], log_dir: str, wall: Dict[str, float]) -> None:
    """Add each profiled peer's scoring (the parent's job group ``evaluate PEER ROWS``)."""
    from ctr_lab.tools import bench_profile

    if not os.path.isdir(log_dir) or not os.listdir(log_dir):
        return  # the scoring session was already running, without an event log
    groups = bench_profile.profile(log_dir)
    for result in results:
        rows = (result.get("profile") or {}).get("stages")
        if rows is None:
            continue
        name = f"evaluate {result['peer']} {result['rows']}"
        totals = groups.get(name, {m: 0 for m in bench_profile.METRICS})
        rows.append({"stage": "evaluate", "wall_seconds": wall.get(name), **totals})


def _one_line(r: Dict[str, Any]) -> str:
    if r.get("status") != "ok":
        return f"{r.get('status')}: {r.get('note')}"
    parts = [f"total {_num(r.get('total_seconds'), 1)} s"]
    if r.get("log_loss") is not None:
        parts.append(f"log loss {r['log_loss']:.4f} ({r['log_loss_vs_bayes_pct']:+.1f}% vs Bayes)")
        parts.append(f"AUC {r['auc']:.4f}")
    if r.get("peak_rss_mib"):
        parts.append(f"peak {r['peak_rss_mib']:.0f} MiB")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------
# Reports: markdown tables and the plot
# ----------------------------------------------------------------------------------------------


def _num(value: Optional[float], digits: int, comma: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if comma else f"{value:.{digits}f}"


def _name(peer: str) -> str:
    return {"bayes": "floor: Bayes-optimal (true p)"}.get(peer, peer)


def markdown_report(report: Dict[str, Any]) -> str:
    """The results as markdown: one table per size, then the scaling table.

    A peer that could not run has one line saying why (e.g. a package not installed).
    """
    lines: List[str] = []
    m = report["machine"]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}, Spark master {m['spark_master']}, driver memory "
        f"{m.get('driver_memory', '?')}. Run {report['started']} .. "
        f"{report.get('finished', '?')}; load average before {report['load_average_before']}, "
        f"after {report.get('load_average_after')}."
    )
    lines.append(f"Peak memory: {report['memory_method']}.")
    if report.get("settings"):
        lines.append(f"Settings for `recommended`/`onehot`: `{json.dumps(report['settings'])}`.")
    lines.append("")
    head = (
        "| peer | start s | load s | featurize s | fit s | score s | total s | CPU s | rows/s "
        "| peak MiB "
        "| iterations | test log loss | vs Bayes | test AUC |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for data in report["data"]:
        rows = data["rows"]
        lines.append(
            f"**{rows:,} rows** (train {data['train_rows']:,}, test {data['test_rows']:,}: the "
            f"last day, from hour {data['test_from_hour']})"
        )
        lines.append("")
        lines.append(head)
        lines.append(rule)
        for r in report["results"]:
            if r.get("rows") != rows:
                continue
            if r.get("status") != "ok":
                lines.append(
                    f"| {_name(r['peer'])} | {r.get('status')}: {r.get('note')} "
                    "| | | | | | | | | | | | |"
                )
                continue
            st = r.get("stages") or {}
            vs = r.get("log_loss_vs_bayes_pct")
            lines.append(
                "| "
                + " | ".join(
                    [
                        _name(r["peer"]),
                        _num(st.get("start"), 1),
                        _num(st.get("load"), 1),
                        _num(st.get("featurize"), 1),
                        _num(st.get("fit"), 1),
                        _num(st.get("score"), 1),
                        _num(r.get("total_seconds"), 1),
                        _num(r.get("cpu_seconds"), 1),
                        _num(r.get("rows_per_second"), 0, comma=True),
                        _num(r.get("peak_rss_mib"), 0, comma=True),
                        "–" if r.get("iterations") is None else str(r["iterations"]),
                        _num(r.get("log_loss"), 4),
                        "–" if vs is None else f"{vs:+.1f} %",
                        _num(r.get("auc"), 4),
                    ]
                )
                + " |"
            )
        lines.append("")
    for r in report["results"]:
        if (r.get("profile") or {}).get("stages"):
            from ctr_lab.tools.bench_profile import markdown_table

            lines.append(
                f"**Profile: {r['peer']}, {r['rows']:,} rows** (Spark event log "
                f"`{r['profile']['event_log_dir']}`; records in count cached column batches "
                "as one record each). Spark computes lazily: a `featurize/<i>` row holds the "
                "jobs its stage's fit started, which compute every earlier stage not cached yet, "
                "and `featurize` the rest of featurizing (the LR's input computed and cached)"
            )
            lines.extend(["", *markdown_table(r["profile"]["stages"]), ""])
    sizes = [d["rows"] for d in report["data"]]
    if len(sizes) > 1:
        lines.append("**Scaling**: total seconds (µs per row)")
        lines.append("")
        lines.append("| peer | " + " | ".join(f"{s:,}" for s in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        for peer in report["peers"]:
            cells = []
            for s in sizes:
                hit = [r for r in report["results"] if r["peer"] == peer and r.get("rows") == s]
                r = hit[0] if hit else None
                if r is None or r.get("status") != "ok" or r.get("total_seconds") is None:
                    cells.append("–" if r is None else str(r.get("status")))
                else:
                    per_row = 1e6 * r["total_seconds"] / s
                    cells.append(f"{r['total_seconds']:.1f} ({per_row:.0f})")
            lines.append(f"| {peer} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_report(report: Dict[str, Any], path: str) -> Optional[str]:
    """Plot total seconds vs rows and test log loss above Bayes vs rows; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (ax_t, ax_q) = plt.subplots(1, 2, figsize=(11, 4.2))
    for peer in [*report["peers"], "bayes"]:
        ok = sorted(
            (r["rows"], r)
            for r in report["results"]
            if r["peer"] == peer and r.get("status") == "ok"
        )
        timed = [(n, r["total_seconds"]) for n, r in ok if r.get("total_seconds")]
        if timed:
            ax_t.plot(*zip(*timed), marker="o", label=peer)
        scored = [(n, r["log_loss_vs_bayes_pct"]) for n, r in ok if peer != "bayes"]
        scored = [(n, v) for n, v in scored if v is not None]
        if scored:
            ax_q.plot(*zip(*scored), marker="o", label=peer)
    ax_t.set(xscale="log", yscale="log", xlabel="rows", ylabel="wall seconds, whole process")
    ax_t.set_title("Time vs rows")
    ax_q.set(xscale="log", xlabel="rows", ylabel="test log loss above Bayes-optimal, %")
    ax_q.set_title("Test log loss (last day)")
    for ax in (ax_t, ax_q):
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def _bench(args: argparse.Namespace) -> int:
    rows_list = parse_rows(args.rows) if args.rows else list(DEFAULT_ROWS)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()] if args.peers else list(PEERS)
    settings = _parse_settings(args.set or [])
    check_settings(settings)  # before the output folder is made
    out_dir = os.path.abspath(args.out)
    json_path = os.path.abspath(args.json or os.path.join(out_dir, "bench.json"))
    os.makedirs(os.path.dirname(json_path), exist_ok=True)

    def write_json(report: Dict[str, Any]) -> None:
        with open(json_path, "w") as fh:
            json.dump(report, fh, indent=2, default=float)

    report = run_bench(
        rows_list,
        peers,
        out_dir,
        args.seed,
        settings,
        args.timeout,
        checkpoint=write_json,
        profile=args.profile,
    )
    write_json(report)
    table = markdown_report(report)
    md_path = os.path.join(out_dir, "bench.md")
    with open(md_path, "w") as fh:
        fh.write(table + "\n")
    plot_path = plot_report(report, os.path.join(out_dir, "bench.png"))
    print()
    print(table)
    print(f"written: {json_path}, {md_path}" + (f", {plot_path}" if plot_path else ""))
    ran = [r for r in report["results"] if r["peer"] != "bayes"]
    if ran and not any(r.get("status") == "ok" for r in ran):
        raise CtrLabError(
            f"every peer failed ({len(ran)} run(s), none ok). Fix: read each one's note in "
            f"{md_path} and the log it names"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `ctr-lab bench`."""
    bench = sub.add_parser(
        "bench",
        help="benchmark ctr_lab against the course pipeline, scikit-learn and Vowpal Wabbit",
        description="Generate (or reuse) synthetic data with known click probabilities, split "
        "it once by time (the last day is the test set), and run every peer on the same rows, "
        "each in its own process: seconds per stage, rows/s, peak memory, optimizer "
        "iterations, test log loss and AUC. Writes JSON, a markdown table and a plot.",
    )
    bench.add_argument(
        "--rows",
        action="append",
        metavar="N[,N...]",
        help="sizes, repeatable or comma-separated, k/M suffixes (default 100k,300k,1M)",
    )
    bench.add_argument("--out", default="build/bench", help="output folder (default build/bench)")
    bench.add_argument("--json", metavar="PATH", help="JSON results (default OUT/bench.json)")
    bench.add_argument(
        "--peers",
        metavar="A,B",
        help="a subset of: " + ", ".join(PEERS) + " (default all)",
    )
    bench.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    bench.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a setting for `recommended` and `onehot`: build_pipeline settings (numFeatures, "
        "maxIter, tol, regParam, standardization, minCount), the LR's aggregationDepth and "
        "maxBlockSizeInMB, partitions, staging=none|cache|parquet (default none); vw_passes "
        "for vw",
    )
    bench.add_argument(
        "--timeout", type=positive_float, default=3600.0, help="seconds before a peer is stopped"
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="record each Spark peer's event log (OUT/profile) and report, per stage of its "
        "pipeline: wall seconds, Spark jobs, stages and tasks, records and bytes in and out, "
        "shuffle, spill and GC",
    )
    bench.set_defaults(func=_bench)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
