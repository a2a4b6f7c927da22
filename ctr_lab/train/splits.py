"""Train/test splits and samples that give the same rows on any cluster."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Dict, Sequence, Tuple, Union

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ctr_lab.errors import CtrLabError

_SECONDS_PER_DAY = 86400
_HASH_BUCKETS = 1_000_000


class EmptySplitError(CtrLabError):
    """A split leaves one side without rows: nothing to train on, or nothing to test on."""


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
    >>> from datetime import datetime, timezone
    >>> hours = [(21, 0), (21, 23), (22, 5)]  # (day of October 2014, hour), UTC
    >>> df = spark.createDataFrame(
    ...     [(datetime(2014, 10, d, h, tzinfo=timezone.utc),) for d, h in hours],
    ...     "event_time timestamp",
    ... )
    >>> train_df, test_df = time_split(df, test_days=1)
    >>> train_df.count(), test_df.count()
    (2, 1)
    """
    if test_days < 1:
        raise CtrLabError(f"time_split: test_days is {test_days}. Fix: use 1 or more")
    if time_col not in df.columns:
        raise CtrLabError(f"time_split: no column {time_col!r}. Fix: pass time_col=")
    day = F.floor(F.unix_timestamp(F.col(time_col)) / _SECONDS_PER_DAY)
    row = df.agg(F.min(day), F.max(day)).first()
    if row is None or row[1] is None:
        raise EmptySplitError("time_split: the DataFrame has no rows with a time")
    first_day, last_day = int(row[0]), int(row[1])
    if first_day > last_day - test_days:
        days = _day_name(first_day)
        if first_day != last_day:
            days += f" to {_day_name(last_day)}"
        raise EmptySplitError(
            f"time_split: every row falls on {days} (UTC), within the last {test_days} day(s) "
            "that make the test set, so the time split leaves no training rows. Fix: split "
            "another way (--split random, or random_split/hash_split), or use data covering "
            f"more than {test_days} day(s)"
        )
    is_test = day > F.lit(last_day - test_days)
    return df.where(~is_test), df.where(is_test)


def _day_name(epoch_day: int) -> str:
    """The calendar date of a day counted from 1970-01-01, e.g. ``2014-10-21``."""
    return (date(1970, 1, 1) + timedelta(days=int(epoch_day))).isoformat()


def random_split(
    df: DataFrame, test_fraction: float = 0.2, seed: int = 12345
) -> Tuple[DataFrame, DataFrame]:
    """Split rows at random (``randomSplit``): repeatable for the same data *and* partitioning.

    Which rows land in test depends on how the data are partitioned, so results differ across
    clusters; prefer :func:`hash_split` for a split that never moves, and :func:`time_split` for
    an honest estimate on click logs.

    Examples
    --------
    >>> train_df, test_df = random_split(spark.range(100), 0.2, seed=12345)
    >>> train_df.count() + test_df.count()
    100
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
    >>> df = spark.range(1000).selectExpr("CAST(id AS STRING) AS id")
    >>> train_df, test_df = hash_split(df, 0.2, key_col="id")
    >>> train_df.count(), test_df.count()
    (790, 210)
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
    >>> df = spark.createDataFrame([(0,), (1,), (1,), (0,), (0,)], "label int")
    >>> sorted(r.label for r in stratified_sample(df, {0: 0.0, 1: 1.0}).collect())
    [1, 1]
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
    Two clicks and eight non-clicks: keep about four non-clicks, each worth two.

    >>> df = spark.createDataFrame([(1,)] * 2 + [(0,)] * 8, "label int")
    >>> sample_df, w = balanced_sample(df, negatives_per_positive=2)
    >>> w, sample_df.where("label = 1").count()
    (2.0, 2)
    """
    counts = {int(r[0]): int(r[1]) for r in df.groupBy(label_col).count().collect()}
    positives, negatives = counts.get(1, 0), counts.get(0, 0)
    if positives == 0 or negatives == 0:
        raise CtrLabError(f"balanced_sample: need both labels, found counts {counts}")
    fraction = min(1.0, negatives_per_positive * positives / negatives)
    return stratified_sample(df, {0: fraction, 1: 1.0}, seed, label_col), 1.0 / fraction
