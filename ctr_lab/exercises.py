"""Checks for the case study's exercises: pass, "not done yet", or what is wrong, never the answer.

Each exercise cell of notebooks 01-05 and of the assignment's starter ends with
``cl.exercises.check(ID, answer, ...)``. The student replaces the ``None`` the notebook ships with
by code of their own; the check works out the right answer from the data the notebook has (with
``ctr_lab``'s own functions) and prints one line: pass, not done yet (the answer is still
``None``, so the notebook still runs to the end), or what is wrong with this answer (a column
missing, counts that include the test day, a sum where a mean belongs), in words that do not
give the right answer away. The assignment's feature has no one right answer: its check says
whether a model can use the column, and the grade whether it helps.

Examples
--------
>>> print(verdict("03-log-loss", None, [(1, 0.5)]))  # doctest: +NORMALIZE_WHITESPACE
Exercise 03-log-loss (log loss by hand): not done yet. Replace None by your code and run the
cell again.
>>> verdict("03-log-loss", -math.log(0.5), [(1, 0.5)]).passed
True
>>> print(verdict("03-log-loss", -math.log10(0.5), [(1, 0.5)]).reason)
That is the log loss in base 10: use the natural logarithm (math.log).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Sequence, Tuple

from ctr_lab.errors import CtrLabError

PASS, NOT_DONE, WRONG = "pass", "not done yet", "not right yet"

#: The advertiser's limit in notebook 05's exercise, in rupees per conversion.
BUDGET_PER_CONVERSION = 75.0
#: The price of one ad shown, as in notebook 05's business table.
COST_PER_AD = 25.0


@dataclass(frozen=True)
class Verdict:
    """What a check says about one answer: ``status`` (:data:`PASS`, ...) and the line it prints."""

    exercise: str
    status: str
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        head = f"Exercise {self.exercise} ({EXERCISES[self.exercise][0]}): {self.status}."
        if self.status == NOT_DONE:
            return f"{head} Replace None by your code and run the cell again."
        return f"{head} {self.reason}" if self.reason else head


class _Wrong(Exception):
    """Raised inside a check with the reason the answer is not right."""


def _spark_df(answer: Any, columns: Sequence[str], what: str) -> Any:
    from pyspark.sql import DataFrame

    if not isinstance(answer, DataFrame):
        raise _Wrong(f"{what} should be a Spark DataFrame; this is a {type(answer).__name__}.")
    missing = [c for c in columns if c not in answer.columns]
    if missing:
        raise _Wrong(
            f"{what} has no column {', '.join(missing)} (it has {', '.join(answer.columns)})."
        )
    return answer


def _mismatches(answer: Any, reference: Any, key: str, column: str) -> Tuple[int, int, int]:
    """Keys of ``reference`` that ``answer`` lacks, its extra or repeated rows, values that differ.

    ``reference`` has one row per ``key``; numbers count as equal within 1e-9.
    """
    from pyspark.sql import functions as F

    if reference.where(F.col(key).isNull()).limit(1).count():
        raise CtrLabError(
            f"this exercise needs an id on every row, and the data has rows without one ({key} "
            "is null: the course's CSV format loses them). Fix: run the notebook on the raw "
            "Avazu format (the avazu_raw_50k sample, or Kaggle's train file)"
        )
    mine = answer.select(F.col(key).alias("_k"), F.col(column).alias("_mine"), F.lit(1).alias("_a"))
    ref = reference.select(
        F.col(key).alias("_k"), F.col(column).alias("_ref"), F.lit(1).alias("_r")
    )
    if dict(reference.dtypes)[column] == "string":
        same = F.col("_mine") == F.col("_ref")
    else:
        same = F.abs(F.col("_mine").cast("double") - F.col("_ref").cast("double")) <= 1e-9
    row = (
        ref.join(mine, "_k", "full_outer")
        .agg(
            F.count("_r").alias("ref"),
            F.count("_a").alias("mine"),
            F.sum((F.col("_r").isNotNull() & F.col("_a").isNull()).cast("int")).alias("missing"),
            F.sum(
                (
                    F.col("_r").isNotNull()
                    & F.col("_a").isNotNull()
                    & ~F.coalesce(same, F.lit(False))
                ).cast("int")
            ).alias("differ"),
        )
        .first()
    )
    missing = int(row["missing"] or 0)
    matched_refs = int(row["ref"]) - missing
    return missing, int(row["mine"]) - matched_refs, int(row["differ"] or 0)


def _click_rate(answer: Any, df: Any) -> None:
    """01: the click rate of each ``site_category`` as a DataFrame (``site_category``, ``ctr``)."""
    from pyspark.sql import functions as F

    _spark_df(answer, ["site_category", "ctr"], "Your answer")
    rates = answer.agg(
        F.max("ctr").alias("max"), F.sum("ctr").alias("sum"), F.count("*").alias("rows")
    ).first()
    if rates["max"] is not None and rates["max"] > 1:
        raise _Wrong(
            "Some ctr is above 1: a click rate is clicks divided by impressions, a share "
            "between 0 and 1."
        )
    reference = df.groupBy("site_category").agg(F.avg("label").alias("ctr"))
    missing, extra, differ = _mismatches(answer, reference, "site_category", "ctr")
    if missing or extra:
        raise _Wrong(
            f"It has {rates['rows']} rows; the data has {reference.count()} site categories, "
            "one row each."
        )
    if differ and rates["sum"] is not None and abs(rates["sum"] - 1) < 1e-6:
        raise _Wrong(
            "Your rates add up to 1: that is each category's share of all clicks. A click rate "
            "divides a category's clicks by that category's impressions."
        )
    if differ:
        raise _Wrong(f"{differ} of the {rates['rows']} categories have another click rate.")


def _publisher(answer: Any, df: Any) -> None:
    """02: ``pub_id`` for every row: the app for app traffic, the site otherwise."""
    from pyspark.sql import functions as F

    from ctr_lab.features import NULL_SITE, with_publisher

    _spark_df(answer, ["id", "pub_id"], "Your answer")
    reference = with_publisher(df).select("id", "pub_id", "site_id", "app_id")
    missing, extra, differ = _mismatches(answer, reference, "id", "pub_id")
    if missing or extra:
        raise _Wrong(
            f"It has {answer.count()} rows for the data's {df.count()}: keep every row once "
            "(withColumn, no filter or join)."
        )
    if not differ:
        return
    joined = reference.join(answer.select("id", F.col("pub_id").alias("_mine")), "id")
    is_app = F.col("site_id") == F.lit(NULL_SITE["site_id"])
    wrong = (
        joined.where(~F.coalesce(F.col("_mine") == F.col("pub_id"), F.lit(False)))
        .agg(
            F.sum(is_app.cast("int")).alias("app"),
            F.sum((~is_app).cast("int")).alias("site"),
            F.sum(F.col("_mine").isNull().cast("int")).alias("null"),
        )
        .collect()[0]  # an aggregate: one row
    )
    where = []
    if wrong["app"]:
        where.append(f"{wrong['app']} app-traffic rows (site_id {NULL_SITE['site_id']})")
    if wrong["site"]:
        where.append(f"{wrong['site']} site-traffic rows")
    nulls = f"; {wrong['null']} of them are null" if wrong["null"] else ""
    raise _Wrong(f"pub_id is not the publisher on {' and '.join(where)}{nulls}.")


def _log_loss(answer: Any, rows: Sequence[Tuple[int, float]]) -> None:
    """03: the log loss of a few (label, probability) rows, by hand."""
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise _Wrong(f"Your answer should be a number; this is a {type(answer).__name__}.")
    losses = [-math.log(p) if y == 1 else -math.log(1 - p) for y, p in rows]
    right = sum(losses) / len(losses)
    close = lambda value: math.isclose(answer, value, rel_tol=1e-6, abs_tol=1e-12)  # noqa: E731
    if close(right):
        return
    if close(-right):
        raise _Wrong("It is negative: log loss is minus the mean log of the right probability.")
    if close(sum(losses)):
        raise _Wrong("That is the sum over the rows: log loss is their mean.")
    if close(right / math.log(10)):
        raise _Wrong("That is the log loss in base 10: use the natural logarithm (math.log).")
    swapped = [-math.log(1 - p) if y == 1 else -math.log(p) for y, p in rows]
    if close(sum(swapped) / len(swapped)):
        raise _Wrong(
            "The labels are the wrong way round: a click (label 1) scores -log(p), no click "
            "-log(1 - p)."
        )
    raise _Wrong(
        "Work out -log(p) for each click and -log(1 - p) for each row without one, then take "
        "the mean."
    )


def _count_feature(answer: Any, df: Any) -> None:
    """04: for each last-day row, how many training-day rows share its ``device_ip``."""
    from pyspark.sql import functions as F

    from ctr_lab.features import FrequencyEncoder
    from ctr_lab.train.splits import time_split

    _spark_df(answer, ["id", "device_ip_count"], "Your answer")
    train_df, test_df = time_split(df)
    reference = (FrequencyEncoder(keys=["device_ip"]).fit(train_df).transform(test_df)).select(
        "id", "device_ip_count"
    )
    missing, extra, differ = _mismatches(answer, reference, "id", "device_ip_count")
    if missing or extra:
        raise _Wrong(
            f"It has {answer.count()} rows: one row per last-day row is asked for (the test "
            f"set has {test_df.count()}), each last-day row once."
        )
    if not differ:
        return
    count = F.col("device_ip_count")
    if answer.where(count.isNull() | F.isnan(count.cast("double"))).limit(1).count():
        raise _Wrong(
            "Some counts are null (or NaN): a device_ip never seen on the training days counts 0."
        )
    leaky = FrequencyEncoder(keys=["device_ip"]).fit(df).transform(test_df)
    if _mismatches(answer, leaky.select("id", "device_ip_count"), "id", "device_ip_count")[2] == 0:
        raise _Wrong(
            "Your counts include the last day's own rows: that is leakage. Count the training "
            "days only, as a model in production only knows the past."
        )
    raise _Wrong(f"{differ} last-day rows have another count.")


def _threshold(answer: Any, pred: Any) -> None:
    """05: the threshold that wins most conversions at no more than the budget per conversion."""
    from ctr_lab.evaluate import business_table

    table = business_table(pred, cost_per_ad=COST_PER_AD)
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise _Wrong(
            f"Your answer should be a threshold (a number); this is a {type(answer).__name__}."
        )
    match = table[(table["threshold"] - float(answer)).abs() < 1e-9]
    if match.empty:
        raise _Wrong("Choose one of the business table's thresholds.")
    row = match.iloc[0]
    cost = row["spend_per_conversion"]
    if not cost <= BUDGET_PER_CONVERSION:
        raise _Wrong(
            f"At {float(answer):g} a conversion costs {cost:.2f}, over the budget of "
            f"{BUDGET_PER_CONVERSION:g}."
        )
    within = table[table["spend_per_conversion"] <= BUDGET_PER_CONVERSION]
    if row["conversions"] < within["conversions"].max():
        raise _Wrong(
            "It keeps within the budget, but another threshold of the table does too and wins "
            "more conversions."
        )


#: Words of the label's columns: a feature made from them knows the answer it should predict.
_LABEL_WORDS = re.compile(r"\b(label|click)\b", re.I)


def _levels(rows: Any, expr: str) -> int:
    """How many values (as text, null aside) the expression ``expr`` takes on ``rows``."""
    from pyspark.sql import functions as F

    return int(
        rows.select(F.expr(expr).cast("string").alias("v"))
        .agg(F.countDistinct("v").alias("levels"))
        .collect()[0]["levels"]  # an aggregate: one row
    )


def _reads_label(name: str) -> str:
    return (
        f"{name!r} reads the label: a model must not use the answer it predicts "
        "(nobody knows the click when the ad is shown)."
    )


def _own_feature(answer: Any, df: Any) -> None:
    """The assignment: columns of one's own, ``{name: Spark SQL expression}``, that a model can use.

    The expressions run on ``df``'s rows after :class:`ctr_lab.train.stages.RowFeatures`, as the
    pipeline's ``extra_features`` stage runs them, without ``label``, as the grader scores them:
    a column that needs the label to be computed reads it, whatever the words it is written in.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    from ctr_lab.train.stages import RowFeatures

    if not isinstance(answer, dict) or not answer:
        raise _Wrong(
            "Your answer should be a dict of column name -> Spark SQL expression (as text); "
            f"this is a {type(answer).__name__}{' without entries' if answer == {} else ''}."
        )
    rows = RowFeatures().transform(df)
    unlabeled = rows.drop("label")  # as the grader scores rows: without their click
    for name, expr in answer.items():
        if not isinstance(name, str) or not isinstance(expr, str):
            raise _Wrong(f"{name!r}: both the name and the expression should be text.")
        if name in rows.columns:
            raise _Wrong(f"{name!r} is a column the data already has: give yours a new name.")
        if _LABEL_WORDS.search(expr):
            raise _Wrong(_reads_label(name))
        try:
            levels = _levels(unlabeled, expr)
        except PySparkException as exc:  # parse, analysis and run-time errors alike
            try:
                _ = rows.select(F.expr(expr)).schema  # analysed only: no Spark job
            except PySparkException:
                first = str(exc).strip().splitlines()[0][:300]
                raise _Wrong(f"{name!r}: Spark cannot compute it: {first}") from None
            raise _Wrong(_reads_label(name)) from None
        if levels <= 1 and _levels(rows, expr) > 1:  # it varies with the label alone
            raise _Wrong(_reads_label(name))
        if levels <= 1:
            raise _Wrong(
                f"{name!r} takes {levels} value(s) on these rows: a column that never "
                "changes cannot tell clicks from the rest."
            )
        if levels == rows.count():
            raise _Wrong(
                f"{name!r} is different on every row: a model cannot learn from a value it never "
                "sees again."
            )


#: Every exercise: its id (the notebook's number first) -> (what it asks, its check).
EXERCISES: Dict[str, Tuple[str, Callable[..., None]]] = {
    "01-click-rate": ("click rate by site_category", _click_rate),
    "02-publisher": ("one publisher column", _publisher),
    "03-log-loss": ("log loss by hand", _log_loss),
    "04-count-feature": ("a count feature without leakage", _count_feature),
    "05-threshold": ("a threshold within budget", _threshold),
    "assignment-feature": ("a feature of your own", _own_feature),
}


def verdict(exercise: str, answer: Any, *context: Any) -> Verdict:
    """Check ``answer`` to ``exercise`` against what ``context`` (the notebook's data) makes right.

    Returns a :class:`Verdict`; :func:`check` prints it. An unknown ``exercise`` is an error naming
    the known ones.
    """
    if exercise not in EXERCISES:
        raise CtrLabError(f"no exercise {exercise!r}. Fix: use one of {', '.join(EXERCISES)}")
    if answer is None:
        return Verdict(exercise, NOT_DONE)
    try:
        EXERCISES[exercise][1](answer, *context)
    except _Wrong as wrong:
        return Verdict(exercise, WRONG, str(wrong))
    return Verdict(exercise, PASS)


def check(exercise: str, answer: Any, *context: Any) -> None:
    """Print the :func:`verdict` on ``answer``: the last line of every exercise cell.

    Returns nothing, so that a notebook shows the line once.
    """
    print(verdict(exercise, answer, *context))
