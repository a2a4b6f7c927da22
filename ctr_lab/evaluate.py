"""Model quality measures computed in Spark, so they work on data of any size."""

from __future__ import annotations

EPSILON = 1e-15


def log_loss_of(df, label_col: str = "label", prob_col: str = "probability") -> float:
    """Mean log loss of click probabilities against 0/1 labels.

    Probabilities are clipped to ``[1e-15, 1 - 1e-15]``, as scikit-learn does.

    Parameters
    ----------
    df
        A DataFrame with a 0/1 label column and a probability-of-click column (a double).
    label_col, prob_col
        Their names.

    Examples
    --------
    >>> df = spark.createDataFrame([(1, 0.8), (0, 0.2)], ["label", "p"])   # doctest: +SKIP
    >>> round(log_loss_of(df, "label", "p"), 4)                             # doctest: +SKIP
    0.2231
    """
    from pyspark.sql import functions as F

    p = F.least(F.greatest(F.col(prob_col).cast("double"), F.lit(EPSILON)), F.lit(1 - EPSILON))
    y = F.col(label_col).cast("double")
    loss = -(y * F.log(p) + (1 - y) * F.log(1 - p))
    value = df.agg(F.avg(loss).alias("log_loss")).first()[0]
    if value is None:
        raise ValueError("log_loss_of: the DataFrame has no rows")
    return float(value)
