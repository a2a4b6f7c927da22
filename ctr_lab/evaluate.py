"""Model quality measures computed in Spark, so they work on data of any size.

Every function takes a DataFrame of predictions with a 0/1 label column (default ``"label"``) and
a probability-of-click column (default ``"probability"``). The probability column may be a double
(for example ``"p_click"``) or the ``probability`` vector Spark ML's ``LogisticRegressionModel``
writes; for a vector, element 1 (the probability of a click) is used. All the work is done by
Spark aggregations: only small results (a number, a dict, a pandas table of at most a few thousand
rows) come back to the driver.

Exact areas under the curves
    ``BinaryClassificationEvaluator`` bins the ROC curve (``numBins=1000`` by default), so its AUC
    is an approximation. :func:`roc_auc` and :func:`pr_auc` group the rows by score instead, and
    agree with scikit-learn's ``roc_auc_score`` and ``average_precision_score`` (ties included).
The threshold rule
    A row is predicted a click when its probability is strictly greater than the threshold
    (``p > threshold``), the rule Spark's ``LogisticRegressionModel`` applies with its
    ``threshold`` parameter.

Examples
--------
A logistic regression on one feature, scored with its ``probability`` vector:

>>> import ctr_lab.evaluate as ev
>>> from pyspark.ml.classification import LogisticRegression
>>> from pyspark.ml.linalg import Vectors
>>> train_df = spark.createDataFrame(
...     [(Vectors.dense([float(x)]), y) for x, y in enumerate([0, 0, 1, 0, 1, 1])],
...     ["features", "label"],
... )
>>> predictions_df = LogisticRegression(maxIter=10).fit(train_df).transform(train_df)
>>> m = ev.metrics(predictions_df, threshold=0.5)
>>> m["rows"], m["clicks"], round(m["roc_auc"], 4)
(6, 3, 0.8889)
>>> ev.threshold_table(predictions_df, thresholds=[0.5])[["threshold", "recall"]]
   threshold    recall
0        0.5  0.666667
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import pandas as pd
from pyspark.ml.evaluation import Evaluator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ctr_lab.errors import CtrLabError

EPSILON = 1e-15

#: The course's thresholds: 0.05, 0.10, ..., 0.50.
DEFAULT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 11))

# The cumulative counts behind the exact AUCs are computed per score range, so that no window
# ever holds all the rows in one partition. Any monotone split of the scores gives the same
# (exact) answer; this many ranges of width 1/1000 keeps each range small on 40M rows.
_SCORE_RANGES = 1000
# The range of the rows without a score (a null probability): below every other, never null
# itself, so that the query's two reads of the grouped scores stay one shuffle (a null range
# would add an inferred filter to one read only, and Spark would score the rows once per read).
_NO_SCORE_RANGE = -1


class EvaluationError(CtrLabError, ValueError):
    """Predictions cannot be evaluated: a missing column, no rows, or only one class present."""


# --------------------------------------------------------------------------------------------
# Column handling
# --------------------------------------------------------------------------------------------


def _check_columns(df: DataFrame, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise EvaluationError(
            f"column(s) {missing} not found in the predictions (columns: {df.columns}). "
            "Fix: pass label_col=/prob_col= with the names your DataFrame uses"
        )


def probability_of_click(df: DataFrame, prob_col: str = "probability") -> Column:
    """A double Column with the probability of a click, whatever the probability column holds.

    Parameters
    ----------
    df
        The predictions.
    prob_col
        A double column, an array column or a Spark ML vector column such as ``probability``;
        for arrays and vectors element 1 (the click class) is taken, with
        ``pyspark.ml.functions.vector_to_array`` (no Python UDF).

    Returns
    -------
    Column
        The probability of a click, as a double.

    Examples
    --------
    >>> from pyspark.ml.linalg import Vectors
    >>> df = spark.createDataFrame([(Vectors.dense([0.7, 0.3]),)], ["probability"])
    >>> df.select(probability_of_click(df).alias("p")).first().p
    0.3
    """
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import ArrayType

    _check_columns(df, prob_col)
    dtype = df.schema[prob_col].dataType
    if isinstance(dtype, VectorUDT) or type(dtype).__name__ == "VectorUDT":
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(F.col(prob_col)).getItem(1).cast("double")
    if isinstance(dtype, ArrayType):
        return F.col(prob_col).getItem(1).cast("double")
    return F.col(prob_col).cast("double")


def _scores(df: DataFrame, label_col: str, prob_col: str) -> DataFrame:
    """Two columns: ``s`` (probability of a click) and ``y`` (the label as 0/1 long)."""
    _check_columns(df, label_col, prob_col)
    return df.select(
        probability_of_click(df, prob_col).alias("s"),
        F.col(label_col).cast("long").alias("y"),
    )


def _clip(c: Column) -> Column:
    return F.least(F.greatest(c, F.lit(EPSILON)), F.lit(1 - EPSILON))


def _log_loss_sum(clicks: Column, non_clicks: Column, score: Column) -> Column:
    """The summed log loss of ``clicks`` + ``non_clicks`` rows that all scored ``score``.

    The one log-loss formula here: :func:`log_loss_of` applies it to single rows (1 + 0 or
    0 + 1), :func:`metrics` to the rows grouped by score. Scores are clipped to
    ``[1e-15, 1 - 1e-15]``, as scikit-learn does.
    """
    p = _clip(score)
    return F.sum(-(clicks * F.log(p) + non_clicks * F.log(1 - p)))


def score_counts(
    df: DataFrame, label_col: str = "label", prob_col: str = "probability"
) -> DataFrame:
    """Rows grouped by score: ``s`` (score), ``pos`` (clicks) and ``neg`` (non-clicks) per score.

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.8), (0, 0.8), (0, 0.1)], ["label", "p_click"])
    >>> score_counts(df, prob_col="p_click").orderBy("s").show()
    +---+---+---+
    |  s|pos|neg|
    +---+---+---+
    |0.1|  0|  1|
    |0.8|  1|  1|
    +---+---+---+
    <BLANKLINE>
    """
    return (
        _scores(df, label_col, prob_col)
        .groupBy("s")
        .agg(F.sum("y").cast("long").alias("pos"), F.count(F.lit(1)).cast("long").alias("n"))
        .select("s", "pos", (F.col("n") - F.col("pos")).alias("neg"))
    )


def cumulative_counts(
    df: DataFrame, label_col: str = "label", prob_col: str = "probability"
) -> DataFrame:
    """Per distinct score, counts of the rows with that score or a higher one.

    The columns are ``s``, ``pos``, ``neg`` (rows with exactly that score), ``tp`` and ``fp``
    (clicks and non-clicks with a score ``>= s``), ``total_pos`` and ``total_neg``. Walking the
    scores from high to low, (``fp / total_neg``, ``tp / total_pos``) traces the ROC curve.

    The running sums are taken within score ranges of width 1/1000 plus an offset per range, so
    no window moves every row into one partition. Rows without a score (a null probability) come
    last, with ``s`` null; the measures built on this table refuse them (:func:`metrics`,
    :func:`roc_auc`, :func:`pr_auc`, :func:`lift_table` and the curves).

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> cumulative_counts(df, prob_col="p").orderBy(F.desc("s")).show()
    +---+---+---+---+---+---------+---------+
    |  s|pos|neg| tp| fp|total_pos|total_neg|
    +---+---+---+---+---+---------+---------+
    |0.9|  1|  0|  1|  0|        2|        2|
    |0.8|  1|  1|  2|  1|        2|        2|
    |0.1|  0|  1|  2|  2|        2|        2|
    +---+---+---+---+---+---------+---------+
    <BLANKLINE>
    """
    grouped = score_counts(df, label_col, prob_col).withColumn(
        "range_id",
        F.coalesce(
            F.floor(F.least(F.greatest(F.col("s"), F.lit(0.0)), F.lit(1.0)) * _SCORE_RANGES),
            F.lit(_NO_SCORE_RANGE).cast("long"),
        ),
    )
    # Offsets: the clicks / non-clicks in all higher score ranges (at most 1001 rows here).
    ranges = grouped.groupBy("range_id").agg(
        F.sum("pos").cast("long").alias("range_pos"), F.sum("neg").cast("long").alias("range_neg")
    )
    higher = (
        Window.partitionBy(F.lit(0))
        .orderBy(F.desc("range_id"))
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    everything = Window.partitionBy(F.lit(0))
    offsets = ranges.select(
        "range_id",
        F.coalesce(F.sum("range_pos").over(higher), F.lit(0)).cast("long").alias("pos_above"),
        F.coalesce(F.sum("range_neg").over(higher), F.lit(0)).cast("long").alias("neg_above"),
        F.sum("range_pos").over(everything).cast("long").alias("total_pos"),
        F.sum("range_neg").over(everything).cast("long").alias("total_neg"),
    )
    within = (
        Window.partitionBy("range_id")
        .orderBy(F.desc("s"))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return grouped.join(F.broadcast(offsets), on="range_id", how="inner").select(
        "s",
        "pos",
        "neg",
        (F.col("pos_above") + F.sum("pos").over(within)).cast("long").alias("tp"),
        (F.col("neg_above") + F.sum("neg").over(within)).cast("long").alias("fp"),
        "total_pos",
        "total_neg",
    )


# --------------------------------------------------------------------------------------------
# Scalar metrics
# --------------------------------------------------------------------------------------------


def _unscored_rows() -> Column:
    """Per row of :func:`cumulative_counts`, its rows without a score (0 for scored ones)."""
    return F.when(F.col("s").isNull(), F.col("pos") + F.col("neg")).otherwise(F.lit(0))


def _refuse_unscored(count: int, prob_col: str, caller: str) -> None:
    """The error for predictions with ``count`` rows of a null probability, if any."""
    if count:
        raise EvaluationError(
            f"{caller}: {count:,} row(s) have no score (null in {prob_col!r}), so the measure "
            "would leave them out. Fix: score them, or drop them first and report how many "
            f"you dropped: df.dropna(subset=[{prob_col!r}])"
        )


def _curve_sums(cum: DataFrame) -> List[Column]:
    """Aggregates over :func:`cumulative_counts` that give both exact AUCs."""
    tp_above = F.col("tp") - F.col("pos")
    return [
        F.sum(_unscored_rows()).cast("long").alias("unscored"),
        # A tie between a click and a non-click counts one half, as in roc_auc_score.
        F.sum(F.col("neg").cast("double") * (tp_above + F.col("pos") * 0.5)).alias("auc_sum"),
        # Average precision: sum over scores of (recall step) x (precision at that score).
        F.sum(F.col("pos").cast("double") * F.col("tp") / (F.col("tp") + F.col("fp"))).alias(
            "ap_sum"
        ),
        F.first("total_pos").alias("total_pos"),
        F.first("total_neg").alias("total_neg"),
    ]


def _auc_values(row: Any) -> Dict[str, float]:
    pos, neg = row["total_pos"] or 0, row["total_neg"] or 0
    roc = row["auc_sum"] / (pos * neg) if pos and neg else math.nan
    ap = row["ap_sum"] / pos if pos else math.nan
    return {"roc_auc": float(roc), "pr_auc": float(ap)}


def _both_aucs(df: DataFrame, label_col: str, prob_col: str, caller: str) -> Dict[str, float]:
    cum = cumulative_counts(df, label_col, prob_col)
    row = cum.agg(*_curve_sums(cum)).first()
    if row is None or row["total_pos"] is None:
        raise EvaluationError("the predictions DataFrame has no rows")
    _refuse_unscored(row["unscored"], prob_col, caller)
    return _auc_values(row)


def roc_auc(df: DataFrame, label_col: str = "label", prob_col: str = "probability") -> float:
    """Exact area under the ROC curve (ties count one half), as ``sklearn.metrics.roc_auc_score``.

    Computed by grouping the rows by score, not by binning them, so unlike
    ``BinaryClassificationEvaluator`` with its default ``numBins=1000`` it is exact.

    Parameters
    ----------
    df
        Predictions with a 0/1 label column and a probability-of-click column.
    label_col, prob_col
        Their names; ``prob_col`` may be a double or Spark ML's ``probability`` vector.

    Returns
    -------
    float
        The AUC.

    Raises
    ------
    EvaluationError
        When there are no rows, or only clicks, or no clicks (the AUC is undefined).

    Examples
    --------
    Of the 2 x 2 (click, non-click) pairs, 3 are ranked right and the tie counts one half:

    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> roc_auc(df, prob_col="p")
    0.875
    """
    return _defined_roc_auc(_both_aucs(df, label_col, prob_col, "roc_auc")["roc_auc"], label_col)


def _defined_roc_auc(value: float, label_col: str) -> float:
    """``value``, a ROC AUC, or the error :func:`roc_auc` gives where only one class is present
    (the AUC is then NaN)."""
    if math.isnan(value):
        raise EvaluationError(
            f"roc_auc: {label_col!r} holds only one class, so the ROC AUC is undefined. "
            "Fix: evaluate on a sample with both clicks and non-clicks"
        )
    return value


def pr_auc(df: DataFrame, label_col: str = "label", prob_col: str = "probability") -> float:
    """Average precision, as ``sklearn.metrics.average_precision_score``.

    The step-wise sum over distinct scores (high to low) of the recall gained at that score times
    the precision at that score; rows with equal scores form one step.

    Raises
    ------
    EvaluationError
        When there are no rows or no clicks.

    Examples
    --------
    Recall steps of 1/2 at precision 1 (score 0.9) and 2/3 (score 0.8):

    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> round(pr_auc(df, prob_col="p"), 4)
    0.8333
    """
    value = _both_aucs(df, label_col, prob_col, "pr_auc")["pr_auc"]
    if math.isnan(value):
        raise EvaluationError(
            f"pr_auc: {label_col!r} holds no clicks, so the average precision is undefined. "
            "Fix: evaluate on a sample with clicks"
        )
    return value


def log_loss_of(df, label_col: str = "label", prob_col: str = "probability") -> float:
    """Mean log loss of click probabilities against 0/1 labels.

    Probabilities are clipped to ``[1e-15, 1 - 1e-15]``, as scikit-learn does.

    Parameters
    ----------
    df
        A DataFrame with a 0/1 label column and a probability-of-click column (a double, or
        Spark ML's ``probability`` vector).
    label_col, prob_col
        Their names.

    Examples
    --------
    Both rows are 0.8 sure of the right answer, so the loss is ``-ln 0.8``:

    >>> df = spark.createDataFrame([(1, 0.8), (0, 0.2)], ["label", "p"])
    >>> round(log_loss_of(df, "label", "p"), 4)
    0.2231
    """
    _check_columns(df, label_col, prob_col)
    y = F.col(label_col).cast("double")
    row = df.agg(
        _log_loss_sum(y, 1 - y, probability_of_click(df, prob_col)).alias("loss_sum"),
        F.count(F.lit(1)).alias("rows"),
    ).first()
    if row is None or not row["rows"]:
        raise EvaluationError("log_loss_of: the DataFrame has no rows")
    return float(row["loss_sum"]) / row["rows"]


class MetricEvaluator(Evaluator):
    """A Spark ML evaluator that scores with :func:`log_loss_of` or :func:`roc_auc`.

    For ``TrainValidationSplit`` and ``CrossValidator``: the model a search picks is judged by
    the same log loss and AUC that every table of the lab reports.

    Parameters
    ----------
    metric
        ``"logLoss"`` (smaller is better) or ``"areaUnderROC"`` (larger is better).
    label_col, prob_col
        The label column and the probability column (a double or Spark ML's vector).
    """

    METRICS = ("logLoss", "areaUnderROC")

    def __init__(
        self, metric: str = "logLoss", label_col: str = "label", prob_col: str = "probability"
    ) -> None:
        super().__init__()
        if metric not in self.METRICS:
            raise EvaluationError(f"metric {metric!r}. Fix: use one of {', '.join(self.METRICS)}")
        self.metric, self.label_col, self.prob_col = metric, label_col, prob_col

    def _evaluate(self, dataset: DataFrame) -> float:
        if self.metric == "logLoss":
            return log_loss_of(dataset, self.label_col, self.prob_col)
        return roc_auc(dataset, self.label_col, self.prob_col)

    def isLargerBetter(self) -> bool:
        return self.metric != "logLoss"


def _confusion(df: DataFrame, threshold: float, label_col: str, prob_col: str) -> Dict[str, int]:
    scores = _scores(df, label_col, prob_col)
    predicted = F.col("s") > F.lit(float(threshold))
    row = scores.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(predicted & (F.col("y") == 1), 1).otherwise(0)).cast("long").alias("tp"),
        F.sum(F.when(predicted & (F.col("y") == 0), 1).otherwise(0)).cast("long").alias("fp"),
        F.sum(F.when(~predicted & (F.col("y") == 1), 1).otherwise(0)).cast("long").alias("fn"),
    ).first()
    if row is None or not row["rows"]:
        raise EvaluationError("the predictions DataFrame has no rows")
    tp, fp, fn = int(row["tp"]), int(row["fp"]), int(row["fn"])
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(row["rows"]) - tp - fp - fn}


def _ratio(a: float, b: float) -> float:
    """a / b, with 0.0 when b is 0 (scikit-learn's ``zero_division`` default)."""
    return float(a) / float(b) if b else 0.0


def _prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
    }


def accuracy(
    df: DataFrame, threshold: float = 0.5, label_col: str = "label", prob_col: str = "probability"
) -> float:
    """Share of rows whose prediction (click when ``p > threshold``) equals the label.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> accuracy(df, threshold=0.5, prob_col="p")
    0.75
    """
    c = _confusion(df, threshold, label_col, prob_col)
    return (c["tp"] + c["tn"]) / (c["tp"] + c["tn"] + c["fp"] + c["fn"])


def classification_report(
    df: DataFrame, threshold: float = 0.5, label_col: str = "label", prob_col: str = "probability"
) -> pd.DataFrame:
    """Precision, recall, F1 and support per label, like ``sklearn.metrics.classification_report``.

    Parameters
    ----------
    df
        Predictions.
    threshold
        A row is predicted a click when ``p > threshold``.
    label_col, prob_col
        Column names.

    Returns
    -------
    pandas.DataFrame
        Index ``0``, ``1``, ``"macro avg"``, ``"weighted avg"``; columns ``precision``,
        ``recall``, ``f1``, ``support``. An undefined ratio (nothing predicted) is 0.0, as
        scikit-learn's default ``zero_division`` gives.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> classification_report(df, threshold=0.5, prob_col="p").round(3)
                  precision  recall     f1  support
    0                 0.800   0.800  0.800        5
    1                 0.667   0.667  0.667        3
    macro avg         0.733   0.733  0.733        8
    weighted avg      0.750   0.750  0.750        8
    """
    c = _confusion(df, threshold, label_col, prob_col)
    per_label = {
        0: dict(_prf(c["tn"], c["fn"], c["fp"]), support=c["tn"] + c["fp"]),
        1: dict(_prf(c["tp"], c["fp"], c["fn"]), support=c["tp"] + c["fn"]),
    }
    table = pd.DataFrame.from_dict(per_label, orient="index")
    total = table["support"].sum()
    means = table[["precision", "recall", "f1"]]
    table.loc["macro avg"] = [*means.mean(axis=0), total]
    weights = table.loc[[0, 1], "support"] / total
    table.loc["weighted avg"] = [*(means.loc[[0, 1]].mul(weights, axis=0).sum(axis=0)), total]
    table["support"] = table["support"].astype("int64")
    return table[["precision", "recall", "f1", "support"]]


def metrics(
    df: DataFrame, threshold: float = 0.5, label_col: str = "label", prob_col: str = "probability"
) -> Dict[str, Any]:
    """All the headline numbers of a model, from one Spark job.

    Every measure comes out of a single aggregation over the rows grouped by score.

    Returns
    -------
    dict
        ``rows``, ``clicks``, ``ctr``, ``log_loss``, ``roc_auc``, ``pr_auc``, ``accuracy``,
        ``precision``, ``recall``, ``f1`` (of clicks, predicted when ``p > threshold``),
        ``mean_predicted`` (mean probability; compare with ``ctr``) and ``threshold``. The AUCs are
        NaN when only one class is present.

    Raises
    ------
    EvaluationError
        When the DataFrame has no rows.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> {k: round(v, 4) for k, v in metrics(df, threshold=0.5, prob_col="p").items()}
    {'rows': 8, 'clicks': 3, 'ctr': 0.375, 'log_loss': 0.4004, 'roc_auc': 0.9333,
     'pr_auc': 0.9167, 'accuracy': 0.75, 'precision': 0.6667, 'recall': 0.6667, 'f1': 0.6667,
     'mean_predicted': 0.425, 'threshold': 0.5}
    """
    cum = cumulative_counts(df, label_col, prob_col)
    count = F.col("pos") + F.col("neg")
    predicted = F.col("s") > F.lit(float(threshold))
    row = cum.agg(
        *_curve_sums(cum),
        _log_loss_sum(F.col("pos"), F.col("neg"), F.col("s")).alias("loss_sum"),
        F.sum(F.col("s") * count).alias("p_sum"),
        F.sum(F.when(predicted, F.col("pos")).otherwise(0)).cast("long").alias("tp"),
        F.sum(F.when(predicted, F.col("neg")).otherwise(0)).cast("long").alias("fp"),
    ).first()
    if row is None or row["total_pos"] is None:
        raise EvaluationError("metrics: the predictions DataFrame has no rows")
    _refuse_unscored(row["unscored"], prob_col, "metrics")
    clicks, non_clicks = int(row["total_pos"]), int(row["total_neg"])
    rows = clicks + non_clicks
    tp, fp = int(row["tp"]), int(row["fp"])
    fn = clicks - tp
    tn = non_clicks - fp
    return {
        "rows": rows,
        "clicks": clicks,
        "ctr": clicks / rows,
        "log_loss": float(row["loss_sum"]) / rows,
        **_auc_values(row),
        "accuracy": (tp + tn) / rows,
        **_prf(tp, fp, fn),
        "mean_predicted": float(row["p_sum"]) / rows,
        "threshold": float(threshold),
    }


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def threshold_table(
    df: DataFrame,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    label_col: str = "label",
    prob_col: str = "probability",
) -> pd.DataFrame:
    """The course's threshold table: precision and recall of clicks at each threshold.

    One pass over the data, whatever the number of thresholds.

    Returns
    -------
    pandas.DataFrame
        ``threshold``, ``precision``, ``recall``, ``predicted_positives`` (rows with
        ``p > threshold``), ``true_positives``. Precision is NaN where nothing is predicted a
        click; recall is NaN when there are no clicks.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> threshold_table(df, thresholds=[0.1, 0.5], prob_col="p").round(3)
       threshold  precision  recall  predicted_positives  true_positives
    0        0.1      0.429   1.000                    7               3
    1        0.5      0.667   0.667                    3               2
    """
    ts = [float(t) for t in thresholds]
    if not ts:
        raise EvaluationError("threshold_table: no thresholds given. Fix: pass thresholds=[...]")
    scores = _scores(df, label_col, prob_col)
    aggs = [F.count(F.lit(1)).alias("rows"), F.sum("y").cast("long").alias("clicks")]
    for i, t in enumerate(ts):
        above = F.col("s") > F.lit(t)
        aggs.append(F.sum(F.when(above, 1).otherwise(0)).cast("long").alias(f"pp{i}"))
        aggs.append(F.sum(F.when(above, F.col("y")).otherwise(0)).cast("long").alias(f"tp{i}"))
    row = scores.agg(*aggs).first()
    if row is None or not row["rows"]:
        raise EvaluationError("threshold_table: the predictions DataFrame has no rows")
    clicks = int(row["clicks"])
    records = []
    for i, t in enumerate(ts):
        pp, tp = int(row[f"pp{i}"]), int(row[f"tp{i}"])
        records.append(
            {
                "threshold": t,
                "precision": tp / pp if pp else math.nan,
                "recall": tp / clicks if clicks else math.nan,
                "predicted_positives": pp,
                "true_positives": tp,
            }
        )
    table = pd.DataFrame.from_records(records)
    table.attrs["clicks"] = clicks
    table.attrs["rows"] = int(row["rows"])
    return table


def business_table(
    df: DataFrame,
    cost_per_ad: float = 25.0,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    currency: str = "₹",
    label_col: str = "label",
    prob_col: str = "probability",
) -> pd.DataFrame:
    """What each threshold costs: ads shown, spend, conversions and spend per conversion.

    The course's business table: an ad is shown to every row predicted a click
    (``p > threshold``) at ``cost_per_ad`` each; a conversion is a shown ad that was clicked.

    Returns
    -------
    pandas.DataFrame
        ``threshold``, ``ads_shown``, ``ad_spend``, ``conversions``, ``spend_per_conversion``
        (NaN with no conversions) and ``click_share`` (conversions / all clicks). The currency and
        cost per ad are kept in ``table.attrs``.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> table = business_table(df, cost_per_ad=25.0, thresholds=[0.1, 0.5], prob_col="p")
    >>> table[["threshold", "ads_shown", "ad_spend", "conversions", "spend_per_conversion"]]
       threshold  ads_shown  ad_spend  conversions  spend_per_conversion
    0        0.1          7     175.0            3             58.333333
    1        0.5          3      75.0            2             37.500000
    """
    base = threshold_table(df, thresholds, label_col, prob_col)
    clicks = base.attrs["clicks"]
    table = pd.DataFrame(
        {
            "threshold": base["threshold"],
            "ads_shown": base["predicted_positives"],
            "ad_spend": base["predicted_positives"] * float(cost_per_ad),
            "conversions": base["true_positives"],
        }
    )
    conversions = table["conversions"].astype("float64")
    table["spend_per_conversion"] = table["ad_spend"] / conversions.where(conversions > 0)
    table["click_share"] = conversions / clicks if clicks else math.nan
    table.attrs.update(currency=currency, cost_per_ad=float(cost_per_ad), clicks=clicks)
    return table


def _uniform_edges(bins: int) -> List[float]:
    return [i / bins for i in range(bins + 1)]


def _bin_index(score: Column, inner_edges: Sequence[float]) -> Column:
    """0-based bin of a score: how many inner edges are <= score (bins are ``[lo, hi)``)."""
    index: Column = F.lit(0)
    for edge in inner_edges:
        index = index + F.when(score >= F.lit(float(edge)), 1).otherwise(0)
    return index


def calibration_table(
    df: DataFrame,
    bins: int = 10,
    strategy: str = "uniform",
    label_col: str = "label",
    prob_col: str = "probability",
    relative_error: float = 1e-4,
) -> pd.DataFrame:
    """Predicted probability against the observed click rate, per probability bin.

    Parameters
    ----------
    df
        Predictions.
    bins
        Number of bins.
    strategy
        ``"uniform"``: bins of equal width on [0, 1] (``[0, 0.1)``, ..., ``[0.9, 1]``);
        ``"quantile"``: edges at quantiles of the predicted probability (``approxQuantile`` with
        ``relative_error``), so bins hold about equal numbers of rows. Equal edges are merged.
    label_col, prob_col, relative_error
        Column names and the quantile precision.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin`` (0-based), ``lower``, ``upper``, ``count``,
        ``mean_predicted``, ``observed_rate``.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> calibration_table(df, bins=2, prob_col="p").round(3)
       bin  lower  upper  count  mean_predicted  observed_rate
    0    0    0.0    0.5      5           0.240          0.200
    1    1    0.5    1.0      3           0.733          0.667
    """
    if bins < 1:
        raise EvaluationError(f"calibration_table: bins={bins}. Fix: use bins >= 1")
    scores = _scores(df, label_col, prob_col)
    if strategy == "uniform":
        edges = _uniform_edges(bins)
    elif strategy == "quantile":
        probs = [i / bins for i in range(bins + 1)]
        found = scores.approxQuantile("s", probs, relative_error)
        if not found:
            raise EvaluationError("calibration_table: the predictions DataFrame has no rows")
        edges = sorted(set(found))
        if len(edges) == 1:
            edges = [edges[0], edges[0]]
    else:
        raise EvaluationError(
            f"calibration_table: unknown strategy {strategy!r}. Fix: use 'uniform' or 'quantile'"
        )
    rows = (
        scores.groupBy(_bin_index(F.col("s"), edges[1:-1]).alias("bin"))
        .agg(
            F.count(F.lit(1)).alias("count"),
            F.avg("s").alias("mean_predicted"),
            F.avg(F.col("y").cast("double")).alias("observed_rate"),
        )
        .collect()
    )
    if not rows:
        raise EvaluationError("calibration_table: the predictions DataFrame has no rows")
    table = pd.DataFrame([r.asDict() for r in rows]).sort_values("bin", ignore_index=True)
    table["bin"] = table["bin"].astype("int64")
    table["count"] = table["count"].astype("int64")
    table.insert(1, "lower", [edges[b] for b in table["bin"]])
    table.insert(2, "upper", [edges[b + 1] for b in table["bin"]])
    table.attrs["strategy"] = strategy
    return table[["bin", "lower", "upper", "count", "mean_predicted", "observed_rate"]]


def expected_calibration_error(
    df: DataFrame,
    bins: int = 10,
    strategy: str = "uniform",
    label_col: str = "label",
    prob_col: str = "probability",
    table: Optional[pd.DataFrame] = None,
) -> float:
    """Expected calibration error: the row-weighted mean of ``|observed - predicted|`` over bins.

    Pass ``table`` (from :func:`calibration_table`) to reuse a table already computed.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> round(expected_calibration_error(df, bins=2, prob_col="p"), 4)
    0.05
    """
    if table is None:
        table = calibration_table(df, bins, strategy, label_col, prob_col)
    gap = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float((gap * table["count"]).sum() / table["count"].sum())


def lift_table(
    df: DataFrame, deciles: int = 10, label_col: str = "label", prob_col: str = "probability"
) -> pd.DataFrame:
    """Clicks per decile of predicted probability (decile 1 = highest), with lift and gain.

    Rows are ranked from the highest probability down; decile ``d`` holds ranks
    ``[(d - 1) n / deciles, d n / deciles)``. Rows with equal probabilities are never split: a group
    of ties goes to the decile of its first (highest-ranked) row.

    Returns
    -------
    pandas.DataFrame
        ``decile``, ``rows``, ``clicks``, ``click_rate``, ``lift`` (click rate / overall CTR),
        ``cumulative_clicks_share`` (the gain: share of all clicks in deciles 1..d),
        ``min_predicted`` and ``max_predicted``.

    Examples
    --------
    >>> df = spark.createDataFrame(
    ...     [(1, 0.9), (1, 0.7), (0, 0.6), (1, 0.4), (0, 0.3), (0, 0.2), (0, 0.2), (0, 0.1)],
    ...     ["label", "p"],
    ... )
    >>> lift_table(df, deciles=2, prob_col="p")[["decile", "rows", "clicks", "lift"]]
       decile  rows  clicks  lift
    0       1     4       3   2.0
    1       2     4       0   0.0
    """
    if deciles < 1:
        raise EvaluationError(f"lift_table: deciles={deciles}. Fix: use deciles >= 1")
    cum = cumulative_counts(df, label_col, prob_col)
    total = F.col("total_pos") + F.col("total_neg")
    rows_before = F.col("tp") + F.col("fp") - F.col("pos") - F.col("neg")
    decile = (F.floor(rows_before * deciles / total) + 1).cast("int").alias("decile")
    rows = (
        cum.groupBy(decile)
        .agg(
            F.sum(F.col("pos") + F.col("neg")).cast("long").alias("rows"),
            F.sum("pos").cast("long").alias("clicks"),
            F.min("s").alias("min_predicted"),
            F.max("s").alias("max_predicted"),
            F.sum(_unscored_rows()).cast("long").alias("unscored"),
        )
        .collect()
    )
    if not rows:
        raise EvaluationError("lift_table: the predictions DataFrame has no rows")
    _refuse_unscored(sum(r["unscored"] for r in rows), prob_col, "lift_table")
    table = pd.DataFrame([r.asDict() for r in rows]).sort_values("decile", ignore_index=True)
    all_rows, all_clicks = int(table["rows"].sum()), int(table["clicks"].sum())
    ctr = all_clicks / all_rows
    table["click_rate"] = table["clicks"] / table["rows"]
    table["lift"] = table["click_rate"] / ctr if all_clicks else math.nan
    table["cumulative_clicks_share"] = (
        table["clicks"].cumsum() / all_clicks if all_clicks else math.nan
    )
    return table[
        [
            "decile",
            "rows",
            "clicks",
            "click_rate",
            "lift",
            "cumulative_clicks_share",
            "min_predicted",
            "max_predicted",
        ]
    ]


def _downsampled_curve(
    df: DataFrame, label_col: str, prob_col: str, max_points: int, caller: str
) -> pd.DataFrame:
    """Cumulative counts at most ``~max_points`` distinct scores, highest score first."""
    cum = cumulative_counts(df, label_col, prob_col)
    total = F.col("total_pos") + F.col("total_neg")
    after = F.col("tp") + F.col("fp")
    before = after - F.col("pos") - F.col("neg")
    # Keep a score when its rows cross one of max_points evenly spaced rank marks: about
    # max_points rows come to the driver whatever the number of distinct scores. The rows
    # without a score, last of all, cross the last mark: they come too, and are refused.
    crosses = F.floor(after * max_points / total) != F.floor(before * max_points / total)
    unscored = _unscored_rows().alias("unscored")
    points = cum.where(crosses).select("s", "tp", "fp", "total_pos", "total_neg", unscored)
    rows = points.collect()
    if not rows:
        raise EvaluationError("the predictions DataFrame has no rows")
    _refuse_unscored(sum(r["unscored"] for r in rows), prob_col, caller)
    table = pd.DataFrame([r.asDict() for r in rows]).sort_values("s", ascending=False)
    table = table.reset_index(drop=True)
    if len(table) > max_points:
        keep = sorted({round(i * (len(table) - 1) / (max_points - 1)) for i in range(max_points)})
        table = table.iloc[keep].reset_index(drop=True)
    return table


def roc_curve_table(
    df: DataFrame, label_col: str = "label", prob_col: str = "probability", max_points: int = 1000
) -> pd.DataFrame:
    """Points of the ROC curve, at most ``max_points + 1`` of them, computed in Spark.

    Returns
    -------
    pandas.DataFrame
        ``threshold`` (score; a row is positive when ``p >= threshold``), ``fpr``, ``tpr``,
        starting at (0, 0) with threshold ``inf`` as ``sklearn.metrics.roc_curve`` does. With
        fewer distinct scores than ``max_points`` it holds every point of the curve.

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> roc_curve_table(df, prob_col="p")
       threshold  fpr  tpr
    0        inf  0.0  0.0
    1        0.9  0.0  0.5
    2        0.8  0.5  1.0
    3        0.1  1.0  1.0
    """
    t = _downsampled_curve(df, label_col, prob_col, max(2, int(max_points)), "roc_curve_table")
    pos, neg = int(t["total_pos"].iloc[0]), int(t["total_neg"].iloc[0])
    curve = pd.DataFrame(
        {
            "threshold": t["s"].astype("float64"),
            "fpr": t["fp"] / neg if neg else math.nan,
            "tpr": t["tp"] / pos if pos else math.nan,
        }
    )
    start = pd.DataFrame({"threshold": [math.inf], "fpr": [0.0], "tpr": [0.0]})
    return pd.concat([start, curve], ignore_index=True)


def pr_curve_table(
    df: DataFrame, label_col: str = "label", prob_col: str = "probability", max_points: int = 1000
) -> pd.DataFrame:
    """Points of the precision-recall curve, at most ``max_points``, highest threshold first.

    Returns
    -------
    pandas.DataFrame
        ``threshold`` (positive when ``p >= threshold``), ``recall``, ``precision``; recall grows
        down the table. With few distinct scores it holds every point of
        ``sklearn.metrics.precision_recall_curve`` (in reverse order, without its final (0, 1)).

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.8), (0, 0.1)], ["label", "p"])
    >>> pr_curve_table(df, prob_col="p").round(3)
       threshold  recall  precision
    0        0.9     0.5      1.000
    1        0.8     1.0      0.667
    2        0.1     1.0      0.500
    """
    t = _downsampled_curve(df, label_col, prob_col, max(2, int(max_points)), "pr_curve_table")
    pos = int(t["total_pos"].iloc[0])
    curve = pd.DataFrame(
        {
            "threshold": t["s"].astype("float64"),
            "recall": t["tp"] / pos if pos else math.nan,
            "precision": t["tp"] / (t["tp"] + t["fp"]),
        }
    )
    curve.attrs["ctr"] = pos / (pos + int(t["total_neg"].iloc[0]))
    return curve


# --------------------------------------------------------------------------------------------
# Model inspection
# --------------------------------------------------------------------------------------------


def _hashed_names(stages: Sequence[Any]) -> Dict[int, List[str]]:
    """Index -> level names from every fitted hashing vocabulary among ``stages``."""
    names: Dict[int, List[str]] = {}
    for stage in stages:
        if callable(getattr(stage, "names", None)) and hasattr(stage, "vocabulary"):
            for index, labels in stage.names().items():
                names.setdefault(int(index), []).extend(labels)
    return names


def top_coefficients(
    lr_model: Any,
    feature_names: Optional[Union[Sequence[Optional[str]], Mapping[int, Any]]] = None,
    n: int = 20,
) -> pd.DataFrame:
    """The ``n`` largest-magnitude coefficients of a binary logistic regression, with names.

    Parameters
    ----------
    lr_model
        A fitted ``LogisticRegressionModel`` (or anything with ``.coefficients``; a plain
        sequence of numbers is accepted too), or a fitted ``PipelineModel`` holding one. For a
        pipeline whose features are hashed, the names come from the
        :class:`~ctr_lab.features.HashedFeatureVocabularyModel` captured at training time
        (saved with the model, so a reloaded model names its coefficients too).
    feature_names
        Names by feature index: a list (as built from the pipeline metadata), or a mapping of
        index to a name or a list of names. Indices without a name are shown as
        ``feature_<i>``.
    n
        How many to keep.

    Returns
    -------
    pandas.DataFrame
        ``index``, ``feature``, ``coefficient``, ``odds_ratio`` (``exp(coefficient)``: the factor
        on the odds of a click per unit of the feature), sorted by ``|coefficient|`` descending,
        and ``shared_by``: how many named levels share the index. Above 1 is a hash collision;
        ``feature`` then lists every level, most frequent first, joined by ``" | "``.

    Examples
    --------
    A fitted ``PipelineModel`` or ``LogisticRegressionModel`` is read the same way as these
    plain numbers:

    >>> top_coefficients([0.5, -2.0, 1.0], ["banner_pos=0", "C1=1005"], n=2).round(3)
       index    feature  coefficient  odds_ratio  shared_by
    0      1    C1=1005         -2.0       0.135          1
    1      2  feature_2          1.0       2.718          0
    """
    import numpy as np

    stages = getattr(lr_model, "stages", None)
    if stages is not None:
        fitted = [s for s in stages if hasattr(s, "coefficients")]
        if len(fitted) != 1:
            raise CtrLabError(
                f"top_coefficients: the pipeline model holds {len(fitted)} fitted models with "
                "coefficients. Fix: pass the LogisticRegressionModel itself"
            )
        if feature_names is None:
            feature_names = _hashed_names(stages)
        lr_model = fitted[0]
    coefficients = getattr(lr_model, "coefficients", lr_model)
    values = np.asarray(
        coefficients.toArray() if hasattr(coefficients, "toArray") else coefficients, dtype=float
    ).ravel()
    k = max(0, min(int(n), values.size))
    # Stable sort on -|c| keeps the lower index first among equal magnitudes.
    order = np.argsort(-np.abs(values), kind="stable")[:k]

    def labels(i: int) -> List[str]:
        if isinstance(feature_names, Mapping):
            found = feature_names.get(i)
        else:
            names = feature_names or []
            found = names[i] if i < len(names) else None
        if not found:
            return []
        return [found] if isinstance(found, str) else [str(x) for x in found]

    named = [labels(int(i)) for i in order]
    return pd.DataFrame(
        {
            "index": order.astype("int64"),
            "feature": [" | ".join(x) if x else f"feature_{i}" for i, x in zip(order, named)],
            "coefficient": values[order],
            "odds_ratio": np.exp(values[order]),
            "shared_by": np.array([len(x) for x in named], dtype="int64"),
        }
    )


def headline(name: str, result: Dict[str, Any]) -> str:
    """One line a notebook prints for a fitted model; ``ctr-lab run`` collects these lines.

    Examples
    --------
    >>> headline("baseline", {"log_loss": 0.41234, "auc": 0.7012, "test_rows": 5180})
    'baseline: test log loss 0.4123, AUC 0.7012 (5,180 test rows)'
    """
    return (
        f"{name}: test log loss {result['log_loss']:.4f}, AUC {result['auc']:.4f} "
        f"({result['test_rows']:,} test rows)"
    )


def training_click_rate(train_df: DataFrame, label_col: str = "label") -> float:
    """The share of clicks in ``train_df``: what the constant click-rate predictor predicts.

    Examples
    --------
    >>> training_click_rate(spark.createDataFrame([(1,), (0,), (0,), (0,)], "label int"))
    0.25
    """
    _check_columns(train_df, label_col)
    row = train_df.agg(F.avg(F.col(label_col).cast("double")).alias("rate")).first()
    if row is None or row["rate"] is None:
        raise EvaluationError("no training rows to take a click rate from. Fix: pass rows")
    return float(row["rate"])


def constant_result(
    train_df: DataFrame, test_df: DataFrame, label_col: str = "label"
) -> Dict[str, Any]:
    """The constant click-rate predictor: the training rows' click rate for every test row.

    The bar any model must clear (a model with a higher log loss gives worse probabilities than
    this constant). Returns ``rate`` and, as ``train_and_evaluate`` does, ``log_loss``, ``auc``
    (0.5: every row is tied) and ``test_rows``, so :func:`headline` prints it like a model.

    Examples
    --------
    A click rate of 1/4 in training, scored on one click and one non-click:
    ``-(ln 0.25 + ln 0.75) / 2 = 0.8370``.

    >>> train = spark.createDataFrame([(1,), (0,), (0,), (0,)], "label int")
    >>> test = spark.createDataFrame([(1,), (0,)], "label int")
    >>> r = constant_result(train, test)
    >>> r["rate"], round(r["log_loss"], 4), r["auc"], r["test_rows"]
    (0.25, 0.837, 0.5, 2)
    """
    rate = training_click_rate(train_df, label_col)
    found = metrics(
        test_df.withColumn("_p_constant", F.lit(float(rate))),
        label_col=label_col,
        prob_col="_p_constant",
    )
    return {
        "rate": rate,
        "log_loss": found["log_loss"],
        "auc": found["roc_auc"],
        "test_rows": found["rows"],
    }
