"""The exercises' checks: a right answer worked out here without ctr_lab passes, ``None`` is
"not done yet", and each usual mistake gets its own reason, which never gives the answer away."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

import ctr_lab as cl
from ctr_lab.errors import CtrLabError
from ctr_lab.exercises import BUDGET_PER_CONVERSION, COST_PER_AD, NOT_DONE, PASS, WRONG, verdict


@pytest.fixture(scope="module")
def data(spark):
    # The notebooks' data (an id on every row), a fifth of it: every day, quicker checks.
    df = cl.load("avazu_raw_50k", spark).df.sample(fraction=0.2, seed=3).cache()
    return df, df.toPandas()


def _reason(exercise, answer, *context):
    found = verdict(exercise, answer, *context)
    assert found.status == WRONG, found
    return found.reason


def test_none_is_not_done_yet_and_the_line_says_what_to_do(capsys):
    for exercise in cl.exercises.EXERCISES:
        assert verdict(exercise, None).status == NOT_DONE
    cl.exercises.check("05-threshold", None)
    out = capsys.readouterr().out
    assert out.startswith("Exercise 05-threshold (a threshold within budget): not done yet.")
    assert "Replace None" in out


def test_an_unknown_exercise_names_the_known_ones():
    with pytest.raises(CtrLabError, match=r"no exercise '01'.*01-click-rate"):
        verdict("01", 1.0)


def test_click_rate_by_category(spark, data):
    df, pdf = data
    rates = pdf.groupby("site_category")["label"].mean().reset_index(name="ctr")
    assert verdict("01-click-rate", spark.createDataFrame(rates), df).status == PASS

    clicks = pdf.groupby("site_category")["label"].sum().reset_index(name="ctr")
    assert "above 1" in _reason("01-click-rate", spark.createDataFrame(clicks), df)
    share = clicks.assign(ctr=clicks["ctr"] / clicks["ctr"].sum())
    assert "add up to 1" in _reason("01-click-rate", spark.createDataFrame(share), df)
    fewer = spark.createDataFrame(rates.iloc[1:])
    assert f"the data has {len(rates)} site categories" in _reason("01-click-rate", fewer, df)
    off = rates.assign(ctr=rates["ctr"].where(rates.index != 0, rates["ctr"][0] + 0.01))
    reason = _reason("01-click-rate", spark.createDataFrame(off), df)
    assert reason == f"1 of the {len(rates)} categories have another click rate."
    assert "Spark DataFrame" in _reason("01-click-rate", rates, df)
    named = spark.createDataFrame(rates.rename(columns={"ctr": "click_rate"}))
    assert "no column ctr" in _reason("01-click-rate", named, df)


def test_publisher_column(spark, data):
    df, pdf = data
    is_app = pdf["site_id"] == "85f751fd"
    right = pdf[["id"]].assign(pub_id=np.where(is_app, pdf["app_id"], pdf["site_id"]))
    assert verdict("02-publisher", spark.createDataFrame(right), df).status == PASS

    site_only = pdf[["id"]].assign(pub_id=pdf["site_id"])
    reason = _reason("02-publisher", spark.createDataFrame(site_only), df)
    assert reason == f"pub_id is not the publisher on {int(is_app.sum())} app-traffic rows " + (
        "(site_id 85f751fd)."
    )
    swapped = pdf[["id"]].assign(pub_id=np.where(is_app, pdf["site_id"], pdf["app_id"]))
    reason = _reason("02-publisher", spark.createDataFrame(swapped), df)
    assert "app-traffic rows" in reason and f"{int((~is_app).sum())} site-traffic rows" in reason
    halved = spark.createDataFrame(right.iloc[: len(right) // 2])
    assert "keep every row once" in _reason("02-publisher", halved, df)


ROWS = [(1, 0.31), (0, 0.12), (0, 0.45), (1, 0.08), (0, 0.2)]


def test_data_without_ids_is_a_clear_error(spark):
    no_ids = cl.load("course_10k", spark).df  # the course's format loses the ids
    with pytest.raises(CtrLabError, match="needs an id on every row"):
        verdict("02-publisher", no_ids.selectExpr("id", "site_id AS pub_id"), no_ids)


def test_log_loss_by_hand():
    labels, probs = zip(*ROWS)
    right = log_loss(labels, probs, labels=[0, 1])
    assert verdict("03-log-loss", right, ROWS).status == PASS
    assert "negative" in _reason("03-log-loss", -right, ROWS)
    assert "sum" in _reason("03-log-loss", right * len(ROWS), ROWS)
    assert "base 10" in _reason("03-log-loss", right / math.log(10), ROWS)
    swapped = log_loss(labels, [1 - p for p in probs], labels=[0, 1])
    assert "wrong way round" in _reason("03-log-loss", swapped, ROWS)
    reason = _reason("03-log-loss", 0.5, ROWS)
    assert "mean" in reason and f"{right:.3f}"[:4] not in reason
    assert "a number" in _reason("03-log-loss", "0.9", ROWS)


def test_count_feature_without_leakage(spark, data):
    df, pdf = data
    day = pd.to_datetime(pdf["event_time"], utc=True).dt.floor("D")
    train, test = pdf[day < day.max()], pdf[day == day.max()]
    seen = train["device_ip"].value_counts()
    right = test[["id"]].assign(device_ip_count=test["device_ip"].map(seen).fillna(0).astype(int))
    assert verdict("04-count-feature", spark.createDataFrame(right), df).status == PASS

    every_day = pdf["device_ip"].value_counts()
    leaky = test[["id"]].assign(device_ip_count=test["device_ip"].map(every_day))
    assert "leakage" in _reason("04-count-feature", spark.createDataFrame(leaky), df)
    unseen = right.assign(device_ip_count=test["device_ip"].map(seen).astype(float))
    assert unseen["device_ip_count"].isna().any()
    assert "null" in _reason("04-count-feature", spark.createDataFrame(unseen), df)
    with_train = pd.concat([right, train[["id"]].assign(device_ip_count=0)])
    reason = _reason("04-count-feature", spark.createDataFrame(with_train), df)
    assert f"the test set has {len(test)}" in reason


def test_threshold_within_budget(spark):
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.56, 4000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    pred = spark.createDataFrame(pd.DataFrame({"label": y, "probability": p}))
    # The business table by hand: an ad for every p > t at COST_PER_AD, a conversion when clicked.
    rows = []
    for t in [round(0.05 * i, 2) for i in range(1, 11)]:
        shown = p > t
        conversions = int(y[shown].sum())
        rows.append((t, conversions, COST_PER_AD * shown.sum() / conversions))
    within = [r for r in rows if r[2] <= BUDGET_PER_CONVERSION]
    best = max(within, key=lambda r: r[1])
    assert 0 < len(within) < len(rows) and best != within[-1]
    assert verdict("05-threshold", best[0], pred).status == PASS

    over = next(r for r in rows if r[2] > BUDGET_PER_CONVERSION)
    assert f"a conversion costs {over[2]:.2f}, over the budget" in _reason(
        "05-threshold", over[0], pred
    )
    assert "another threshold" in _reason("05-threshold", within[-1][0], pred)
    assert "business table's thresholds" in _reason("05-threshold", 0.33, pred)
    assert "a number" in _reason("05-threshold", "0.3", pred)


def test_a_feature_of_your_own(data):
    df, pdf = data
    # Levels counted here in pandas: a hashed site x hour (many levels, not one per row) passes.
    cross = pdf["site_id"] + "_" + pdf["event_time"].dt.hour.astype(str)
    assert 1 < cross.nunique() < len(pdf)
    good = {"site_hour": "concat_ws('_', site_id, hour_of_day)"}
    assert verdict("assignment-feature", good, df).status == PASS
    assert verdict("assignment-feature", {"hour_level": "hour_of_day"}, df).status == PASS

    assert "dict of column name" in _reason("assignment-feature", "hour_of_day", df)
    assert "without entries" in _reason("assignment-feature", {}, df)
    assert "already has" in _reason("assignment-feature", {"hour_of_day": "C1"}, df)
    assert "reads the label" in _reason("assignment-feature", {"x": "label * C1"}, df)
    assert "reads the label" in _reason("assignment-feature", {"x": "CLICK"}, df)
    # The label's name spelled so that no word of it shows: the rows' JSON, its last field.
    spelled = "get_json_object(to_json(struct(*)), concat('$.lab', 'el'))"
    assert "reads the label" in _reason("assignment-feature", {"x": spelled}, df)
    missing = _reason("assignment-feature", {"x": "no_such_column"}, df)
    assert missing.startswith("'x': Spark cannot compute it:") and "no_such_column" in missing
    assert "Spark cannot compute it" in _reason("assignment-feature", {"x": "concat(("}, df)
    assert pdf["C1"].nunique() > 1 and "takes 1 value(s)" in _reason(
        "assignment-feature", {"x": "C1 * 0"}, df
    )
    assert pdf["id"].is_unique and "different on every row" in _reason(
        "assignment-feature", {"x": "id"}, df
    )
    assert "should be text" in _reason("assignment-feature", {"x": 3}, df)
